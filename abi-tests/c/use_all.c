/* Uses every declaration and macro of ftshim.h; compiled (not run) by tests/compile_matrix.rs
 * as C99, C11 and C++17 with gcc and clang, warnings as errors. Valid C and C++. */
#include "ftshim.h"
#include "ftshim_loader.h" /* both headers together, after Python.h */

struct holder {
    PyObject_HEAD
    ftshim_mutex mutex;
    long long value;
};

static ftshim_mutex global_mutex = FTSHIM_MUTEX_INIT;

int use_all(PyObject *a, PyObject *b, struct holder *h);

int
use_all(PyObject *a, PyObject *b, struct holder *h)
{
    ftshim_critical_section cs;
    int total = 0;
    if (ftshim_check_abi_version() < 0) {
        return -1;
    }
    total += (int)(ftshim_abi_version() >> 16) + (int)(FTSHIM_ABI_VERSION & 0xffffu);
    FTSHIM_BEGIN_CRITICAL_SECTION(a);
    h->value++;
    FTSHIM_END_CRITICAL_SECTION();
    FTSHIM_BEGIN_CRITICAL_SECTION2(a, b);
    h->value++;
    FTSHIM_END_CRITICAL_SECTION2();
    FTSHIM_BEGIN_CRITICAL_SECTION_MUTEX(&h->mutex);
    h->value++;
    FTSHIM_END_CRITICAL_SECTION_MUTEX();
    total += ftshim_critical_section_begin(&cs, a) + ftshim_critical_section_end(&cs);
    total += ftshim_critical_section2_begin(&cs, a, b) + ftshim_critical_section_end(&cs);
    total += ftshim_critical_section_begin_mutex(&cs, &global_mutex) + ftshim_critical_section_end(&cs);
    total += ftshim_mutex_lock(&h->mutex) + ftshim_mutex_unlock(&h->mutex);
    total += ftshim_mutex_trylock(&global_mutex) + ftshim_mutex_is_locked(&global_mutex);
    total += (ftshim_mutex_lock)(&global_mutex) + (ftshim_mutex_unlock)(&global_mutex);
    total += (ftshim_mutex_trylock)(&global_mutex) + (ftshim_mutex_is_locked)(&global_mutex);
    total += ftshim_object_set_immortal(a) + ftshim_object_is_immortal(b);
    total += ftshim_status_str(FTSHIM_ERR_BUSY)[0];
    return total;
}

/* Parameters used only by a section: no -Wunused-parameter on any build (CPython 3.13's own GIL
 * macro is a bare `{` that would leave them unused). */
int section_only(PyObject *one, PyObject *two, ftshim_mutex *m);

int
section_only(PyObject *one, PyObject *two, ftshim_mutex *m)
{
    int x = 0;
    FTSHIM_BEGIN_CRITICAL_SECTION(one);
    x++;
    FTSHIM_END_CRITICAL_SECTION();
    FTSHIM_BEGIN_CRITICAL_SECTION2(one, two);
    x++;
    FTSHIM_END_CRITICAL_SECTION2();
    FTSHIM_BEGIN_CRITICAL_SECTION_MUTEX(m);
    x++;
    FTSHIM_END_CRITICAL_SECTION_MUTEX();
    return x;
}
