/*
 * ftbench — native CPython primitives vs ftshim, in the same process (built for 3.13t only).
 *
 *   ftbench.time(name, n, obj=None, obj2=obj, parties=1)
 *                                   -> nanoseconds for n iterations of loop `name` (timed in C);
 *                                      with parties > 1, first waits until that many threads
 *                                      have arrived (ftbench.reset_gate() between rounds)
 *   ftbench.make_immortal(obj)      -> ftshim status
 *   ftbench.LOOPS                   -> the loop names
 *
 * Each loop is its own non-inlined function so callgrind can attribute instructions to it.
 */
#define PY_SSIZE_T_CLEAN
#include "ftshim.h"
#include <string.h>
#include <time.h>

#if !defined(Py_GIL_DISABLED)
#  error "ftbench compares against CPython 3.13t's native primitives: build it for the free-threaded interpreter"
#endif

/* Each loop starts on its own 64-byte boundary so code placement does not favour either side. */
#define NOINLINE __attribute__((noinline, aligned(64)))

static volatile long long sink;
static PyMutex native_mutex;
static ftshim_mutex shim_mutex;

NOINLINE static void
loop_cs_native(PyObject *o, PyObject *o2, Py_ssize_t n)
{
    (void)o2;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_BEGIN_CRITICAL_SECTION(o);
        sink++;
        Py_END_CRITICAL_SECTION();
    }
}

NOINLINE static void
loop_cs_ftshim(PyObject *o, PyObject *o2, Py_ssize_t n)
{
    (void)o2;
    for (Py_ssize_t i = 0; i < n; i++) {
        FTSHIM_BEGIN_CRITICAL_SECTION(o);
        sink++;
        FTSHIM_END_CRITICAL_SECTION();
    }
}

NOINLINE static void
loop_cs_ftshim_fn(PyObject *o, PyObject *o2, Py_ssize_t n)
{
    (void)o2;
    ftshim_critical_section cs;
    for (Py_ssize_t i = 0; i < n; i++) {
        (void)ftshim_critical_section_begin(&cs, o);
        sink++;
        (void)ftshim_critical_section_end(&cs);
    }
}

NOINLINE static void
loop_cs2_native(PyObject *o, PyObject *o2, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_BEGIN_CRITICAL_SECTION2(o, o2);
        sink++;
        Py_END_CRITICAL_SECTION2();
    }
}

NOINLINE static void
loop_cs2_ftshim(PyObject *o, PyObject *o2, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        FTSHIM_BEGIN_CRITICAL_SECTION2(o, o2);
        sink++;
        FTSHIM_END_CRITICAL_SECTION2();
    }
}

NOINLINE static void
loop_cs_mutex_ftshim(PyObject *o, PyObject *o2, Py_ssize_t n)
{
    (void)o;
    (void)o2;
    for (Py_ssize_t i = 0; i < n; i++) {
        FTSHIM_BEGIN_CRITICAL_SECTION_MUTEX(&shim_mutex);
        sink++;
        FTSHIM_END_CRITICAL_SECTION_MUTEX();
    }
}

NOINLINE static void
loop_mutex_native(PyObject *o, PyObject *o2, Py_ssize_t n)
{
    (void)o;
    (void)o2;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyMutex_Lock(&native_mutex);
        sink++;
        PyMutex_Unlock(&native_mutex);
    }
}

NOINLINE static void
loop_mutex_ftshim(PyObject *o, PyObject *o2, Py_ssize_t n)
{
    (void)o;
    (void)o2;
    for (Py_ssize_t i = 0; i < n; i++) {
        ftshim_mutex_lock(&shim_mutex);
        sink++;
        ftshim_mutex_unlock(&shim_mutex);
    }
}

NOINLINE static void
loop_mutex_ftshim_fn(PyObject *o, PyObject *o2, Py_ssize_t n)
{
    (void)o;
    (void)o2;
    for (Py_ssize_t i = 0; i < n; i++) {
        (ftshim_mutex_lock)(&shim_mutex);
        sink++;
        (ftshim_mutex_unlock)(&shim_mutex);
    }
}

NOINLINE static void
loop_refcount(PyObject *o, PyObject *o2, Py_ssize_t n)
{
    (void)o2;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(o);
        Py_DECREF(o);
    }
}

typedef void (*loop_fn)(PyObject *, PyObject *, Py_ssize_t);

static const struct {
    const char *name;
    loop_fn fn;
} loops[] = {
    {"cs_native", loop_cs_native},
    {"cs_ftshim", loop_cs_ftshim},
    {"cs_ftshim_fn", loop_cs_ftshim_fn},
    {"cs2_native", loop_cs2_native},
    {"cs2_ftshim", loop_cs2_ftshim},
    {"cs_mutex_ftshim", loop_cs_mutex_ftshim},
    {"mutex_native", loop_mutex_native},
    {"mutex_ftshim", loop_mutex_ftshim},
    {"mutex_ftshim_fn", loop_mutex_ftshim_fn},
    {"refcount", loop_refcount},
};

/* Threads that reached ftbench.time with parties > 1; they spin here until all have, so the
 * timed loops start together instead of a thread wake-up apart. */
static int gate_arrived;

static PyObject *
ftbench_time(PyObject *Py_UNUSED(module), PyObject *args)
{
    const char *name;
    Py_ssize_t n;
    PyObject *obj = Py_None, *obj2 = NULL;
    int parties = 1;
    if (!PyArg_ParseTuple(args, "sn|OOi:time", &name, &n, &obj, &obj2, &parties)) {
        return NULL;
    }
    if (parties > 1) {
        __atomic_add_fetch(&gate_arrived, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&gate_arrived, __ATOMIC_ACQUIRE) < parties) {
        }
    }
    if (obj2 == NULL) {
        obj2 = obj;
    }
    for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
        if (strcmp(loops[i].name, name) == 0) {
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            loops[i].fn(obj, obj2, n);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            long long ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
            return PyLong_FromLongLong(ns);
        }
    }
    PyErr_Format(PyExc_ValueError, "unknown loop '%s'", name);
    return NULL;
}

static PyObject *
ftbench_reset_gate(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    __atomic_store_n(&gate_arrived, 0, __ATOMIC_SEQ_CST);
    Py_RETURN_NONE;
}

static PyObject *
ftbench_make_immortal(PyObject *Py_UNUSED(module), PyObject *obj)
{
    return PyLong_FromLong(ftshim_object_set_immortal(obj));
}

static PyMethodDef ftbench_methods[] = {
    {"time", ftbench_time, METH_VARARGS, "time(name, n, obj=None, obj2=obj, parties=1) -> ns"},
    {"reset_gate", ftbench_reset_gate, METH_NOARGS, "reset the start gate used with parties > 1"},
    {"make_immortal", ftbench_make_immortal, METH_O, "ftshim_object_set_immortal(obj) -> status"},
    {NULL, NULL, 0, NULL},
};

static int
ftbench_exec(PyObject *module)
{
    PyObject *names = PyTuple_New((Py_ssize_t)(sizeof loops / sizeof loops[0]));
    if (names == NULL) {
        return -1;
    }
    for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
        PyObject *s = PyUnicode_FromString(loops[i].name);
        if (s == NULL) {
            Py_DECREF(names);
            return -1;
        }
        PyTuple_SET_ITEM(names, (Py_ssize_t)i, s);
    }
    int rc = PyModule_AddObjectRef(module, "LOOPS", names);
    Py_DECREF(names);
    return rc;
}

static PyModuleDef_Slot ftbench_slots[] = {
    {Py_mod_exec, (void *)ftbench_exec},
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
    {0, NULL},
};

static struct PyModuleDef ftbench_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ftbench",
    .m_size = 0,
    .m_methods = ftbench_methods,
    .m_slots = ftbench_slots,
};

PyMODINIT_FUNC
PyInit_ftbench(void)
{
    return PyModuleDef_Init(&ftbench_module);
}
