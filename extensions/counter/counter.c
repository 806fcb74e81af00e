/*
 * counter — the smallest real use of ftshim: a type whose C-level counter is incremented under a
 * critical section, so concurrent increments from many threads never lose an update on a
 * free-threaded interpreter, and the same source compiles and works on GIL builds.
 *
 *   Counter().increment(n=1)           n increments, each in its own critical section on self
 *   Counter().increment_unlocked(n=1)  the same without the section: the racy control
 *   Counter().value                    read under the critical section
 *
 * Multi-phase init; declares Py_mod_gil = Py_MOD_GIL_NOT_USED so importing it keeps the GIL off
 * (FTSHIM_MOD_GIL_NOT_USED_SLOT: nothing before 3.13), and from 3.15 its PyABIInfo
 * (FTSHIM_MOD_ABI_SLOT), which CPython checks on import.
 */
#define PY_SSIZE_T_CLEAN
#include "ftshim.h"

typedef struct {
    PyObject_HEAD
    long long value;
} CounterObject;

static int
parse_count(PyObject *args, const char *format, Py_ssize_t *n)
{
    *n = 1;
    if (!PyArg_ParseTuple(args, format, n)) {
        return -1;
    }
    if (*n < 0) {
        PyErr_Format(PyExc_ValueError, "increment count must be >= 0, got %zd", *n);
        return -1;
    }
    return 0;
}

static PyObject *
Counter_increment(PyObject *op, PyObject *args)
{
    CounterObject *self = (CounterObject *)op;
    Py_ssize_t n;
    if (parse_count(args, "|n:increment", &n) < 0) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        FTSHIM_BEGIN_CRITICAL_SECTION(self);
        self->value = self->value + 1;
        FTSHIM_END_CRITICAL_SECTION();
    }
    Py_RETURN_NONE;
}

static PyObject *
Counter_increment_unlocked(PyObject *op, PyObject *args)
{
    /* Deliberately racy: a separate load and store through volatile, so the compiler keeps one
     * read-modify-write per iteration and concurrent threads overwrite each other's updates. */
    volatile long long *value = &((CounterObject *)op)->value;
    Py_ssize_t n;
    if (parse_count(args, "|n:increment_unlocked", &n) < 0) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long long v = *value;
        *value = v + 1;
    }
    Py_RETURN_NONE;
}

static PyObject *
Counter_get_value(PyObject *op, void *Py_UNUSED(closure))
{
    CounterObject *self = (CounterObject *)op;
    long long v;
    FTSHIM_BEGIN_CRITICAL_SECTION(self);
    v = self->value;
    FTSHIM_END_CRITICAL_SECTION();
    return PyLong_FromLongLong(v);
}

static void
Counter_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyMethodDef Counter_methods[] = {
    {"increment", Counter_increment, METH_VARARGS,
     "increment(n=1): add 1 to the counter n times, each under a critical section on self"},
    {"increment_unlocked", Counter_increment_unlocked, METH_VARARGS,
     "increment_unlocked(n=1): the same with no locking (racy control for tests)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Counter_getset[] = {
    {"value", Counter_get_value, NULL, "the current count", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Counter_slots[] = {
    {Py_tp_doc, (void *)"A counter that is safe to increment from many threads."},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_dealloc, (void *)Counter_dealloc},
    {Py_tp_methods, Counter_methods},
    {Py_tp_getset, Counter_getset},
    {0, NULL},
};

static PyType_Spec Counter_spec = {
    .name = "counter.Counter",
    .basicsize = sizeof(CounterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Counter_slots,
};

static int
counter_exec(PyObject *module)
{
    if (ftshim_check_abi_version() < 0) {
        return -1;
    }
    PyObject *type = PyType_FromModuleAndSpec(module, &Counter_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    int rc = PyModule_AddType(module, (PyTypeObject *)type);
    Py_DECREF(type);
    return rc;
}

/* 3.15+: CPython's PyABIInfo for this build, checked on import (nothing before 3.15). */
FTSHIM_ABI_INFO_VAR(counter_abi_info);

static PyModuleDef_Slot counter_module_slots[] = {
    FTSHIM_MOD_ABI_SLOT(counter_abi_info)
    {Py_mod_exec, (void *)counter_exec},
    FTSHIM_MOD_GIL_NOT_USED_SLOT
    {0, NULL},
};

static struct PyModuleDef counter_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "counter",
    .m_doc = "A thread-safe counter built on ftshim critical sections.",
    .m_size = 0,
    .m_slots = counter_module_slots,
};

PyMODINIT_FUNC
PyInit_counter(void)
{
    return PyModuleDef_Init(&counter_module);
}
