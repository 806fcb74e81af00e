/*
 * single — a single-phase-init module (PyModule_Create in PyInit_, no slots) that declares it
 * does not need the GIL, on every build, with ftshim_module_set_gil_not_used (ABI 1.1).
 *
 * Many older extensions are single-phase. They cannot use the Py_mod_gil slot; CPython's own way
 * is PyUnstable_Module_SetGIL, which only free-threaded builds have, so without ftshim they need
 * an #ifdef Py_GIL_DISABLED. Without the declaration a free-threaded interpreter re-enables the
 * GIL for the whole process on import (build with -DSINGLE_NO_DECLARATION to see it).
 *
 *   import single; single.add(2, 3) -> 5
 */
#define PY_SSIZE_T_CLEAN
#include "ftshim.h"

static PyObject *
single_add(PyObject *Py_UNUSED(module), PyObject *args)
{
    long a, b;
    if (!PyArg_ParseTuple(args, "ll:add", &a, &b)) {
        return NULL;
    }
    return PyLong_FromLong(a + b);
}

static PyMethodDef single_methods[] = {
    {"add", single_add, METH_VARARGS, "add(a, b) -> a + b"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef single_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "single",
    .m_doc = "A single-phase module that declares GIL freedom through ftshim.",
    .m_size = -1,
    .m_methods = single_methods,
};

PyMODINIT_FUNC
PyInit_single(void)
{
    if (ftshim_check_abi_version() < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&single_module);
    if (m == NULL) {
        return NULL;
    }
#ifndef SINGLE_NO_DECLARATION
    if (ftshim_module_set_gil_not_used(m) != FTSHIM_OK) {
        Py_DECREF(m);
        return NULL;
    }
#endif
    return m;
}
