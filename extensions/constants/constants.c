/*
 * constants — module-level constants shared by every thread, made immortal.
 *
 * Porting note: every thread that touches a shared constant increments and decrements its
 * refcount. On a free-threaded build those writes go to the object's shared refcount, an atomic
 * that all threads fight over. Making the constants immortal (once, in the exec slot, before any
 * other thread can see them) turns Py_INCREF/Py_DECREF on them into no-ops.
 *
 *   constants.MISSING                 a unique sentinel
 *   constants.DEFAULTS                a tuple of (name, value) pairs
 *   constants.lookup(name, default=MISSING)
 *   constants.IMMORTAL                True when the constants are immortal on this interpreter
 *                                     (3.11 has no immortal objects: they are pinned instead)
 */
#define PY_SSIZE_T_CLEAN
#include "ftshim.h"

typedef struct {
    PyObject *missing;
    PyObject *defaults;
} constants_state;

static PyObject *
constants_lookup(PyObject *module, PyObject *args)
{
    constants_state *st = (constants_state *)PyModule_GetState(module);
    PyObject *name, *dflt = st->missing;
    if (!PyArg_ParseTuple(args, "U|O:lookup", &name, &dflt)) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(st->defaults);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyTuple_GET_ITEM(st->defaults, i);
        int eq = PyUnicode_Compare(PyTuple_GET_ITEM(pair, 0), name) == 0;
        if (PyErr_Occurred()) {
            return NULL;
        }
        if (eq) {
            return Py_NewRef(PyTuple_GET_ITEM(pair, 1));
        }
    }
    return Py_NewRef(dflt);
}

/* Builds the constants. Interned names are immortal already; the tuples and the sentinel are
 * made immortal here, while only this thread can see them. */
static int
constants_exec(PyObject *module)
{
    if (ftshim_check_abi_version() < 0) {
        return -1;
    }
    constants_state *st = (constants_state *)PyModule_GetState(module);
    st->missing = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    st->defaults = Py_BuildValue("((si)(si)(ss))", "retries", 3, "timeout_ms", 2500, "mode", "fast");
    if (st->missing == NULL || st->defaults == NULL) {
        return -1;
    }
    PyObject *objects[8] = {st->missing, st->defaults};
    size_t count = 2;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(st->defaults); i++) {
        objects[count++] = PyTuple_GET_ITEM(st->defaults, i);
    }
    int all_immortal = 1;
    for (size_t i = 0; i < count; i++) {
        ftshim_status status = ftshim_object_set_immortal(objects[i]);
        if (status != FTSHIM_OK) {
            PyErr_Format(PyExc_ImportError, "constants: cannot make a constant immortal: %s (status %d)",
                         ftshim_status_str(status), (int)status);
            return -1;
        }
        all_immortal &= ftshim_object_is_immortal(objects[i]) == 1;
    }
    if (PyModule_AddObjectRef(module, "MISSING", st->missing) < 0 ||
        PyModule_AddObjectRef(module, "DEFAULTS", st->defaults) < 0 ||
        PyModule_AddObjectRef(module, "IMMORTAL", all_immortal ? Py_True : Py_False) < 0) {
        return -1;
    }
    return 0;
}

static int
constants_traverse(PyObject *module, visitproc visit, void *arg)
{
    constants_state *st = (constants_state *)PyModule_GetState(module);
    Py_VISIT(st->missing);
    Py_VISIT(st->defaults);
    return 0;
}

static int
constants_clear(PyObject *module)
{
    constants_state *st = (constants_state *)PyModule_GetState(module);
    Py_CLEAR(st->missing);
    Py_CLEAR(st->defaults);
    return 0;
}

static PyMethodDef constants_methods[] = {
    {"lookup", constants_lookup, METH_VARARGS, "lookup(name, default=MISSING) -> the default value for name"},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot constants_slots[] = {
    {Py_mod_exec, (void *)constants_exec},
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef constants_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "constants",
    .m_doc = "Shared immortal constants.",
    .m_size = sizeof(constants_state),
    .m_methods = constants_methods,
    .m_slots = constants_slots,
    .m_traverse = constants_traverse,
    .m_clear = constants_clear,
};

PyMODINIT_FUNC
PyInit_constants(void)
{
    return PyModuleDef_Init(&constants_module);
}
