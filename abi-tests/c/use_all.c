/* Uses every declaration and macro of ftshim.h; compiled (not run) by tests/compile_matrix.rs
 * as C99, C11 and C++17 with gcc and clang, warnings as errors. Valid C and C++. */
#include "ftshim.h"
#include "ftshim_loader.h" /* both headers together, after Python.h */

#if defined(Py_TARGET_ABI3T)
/* abi3t (3.15 limited API for both builds): PyObject is opaque, so no PyObject_HEAD. */
struct holder {
    ftshim_mutex mutex;
    long long value;
};
#else
struct holder {
    PyObject_HEAD
    ftshim_mutex mutex;
    long long value;
};
#endif

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
    /* ABI 1.1 */
    total += ftshim_mutex_init(&h->mutex) + (ftshim_mutex_init)(&global_mutex);
    FTSHIM_BEGIN_CRITICAL_SECTION2_MUTEX(&h->mutex, &global_mutex);
    h->value++;
    FTSHIM_END_CRITICAL_SECTION2_MUTEX();
    total += ftshim_critical_section2_begin_mutex(&cs, &h->mutex, &global_mutex) + ftshim_critical_section_end(&cs);
    total += ftshim_module_set_gil_not_used(a) + (ftshim_module_set_gil_not_used)(b);
    return total;
}

/* Declaring GIL freedom and (3.15) the module's ABI information in a slot array. */
FTSHIM_ABI_INFO_VAR(abi_info);
static PyModuleDef_Slot module_slots[] = {
    FTSHIM_MOD_ABI_SLOT(abi_info)
    FTSHIM_MOD_GIL_NOT_USED_SLOT
    {0, NULL}};

PyModuleDef_Slot *use_slots(void);

PyModuleDef_Slot *
use_slots(void)
{
    return module_slots;
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
    FTSHIM_BEGIN_CRITICAL_SECTION2_MUTEX(m, m);
    x++;
    FTSHIM_END_CRITICAL_SECTION2_MUTEX();
    return x;
}
