/*
 * probe — the abi-tests' fixture: every ftshim API, every kind of section and lock, and the
 * statuses for misuse, reachable from Python. Not an example of style; see counter, cache, bank
 * and constants for that.
 *
 *   p = probe.Probe()
 *   p.add(kind, n, other=None, gate=None, parties=2)
 *                                  (kinds: section[_fn], section2[_fn], mutex[_fn],
 *                                  mutex_section[_fn], section2_mutex[_fn] (ABI 1.1), none)
 *                                  n increments of p.n (and other.n for the 2-object kinds),
 *                                  each under one section/lock of `kind` ("none": no lock, the
 *                                  racy control); with a gate Probe, first waits in C until
 *                                  `parties` threads have arrived, so the loops overlap
 *   p.n
 *   p.hold_mutex_and_call(fn)      lock p's mutex, call fn(), unlock
 *   p.section_and_call(fn)         fn() inside FTSHIM_BEGIN_CRITICAL_SECTION(p)
 *   p.mutex_section_and_call(fn)   fn() inside FTSHIM_BEGIN_CRITICAL_SECTION_MUTEX(&p's mutex)
 *   probe.set_immortal(obj) / probe.is_immortal(obj) -> status / 1, 0 or status
 *   probe.hammer(obj, n)           n Py_INCREF + Py_DECREF pairs on obj
 *   probe.statuses()               {name: status} for NULL arguments and misuse
 *   probe.abi()                    (header major, header minor, library version)
 */
#define PY_SSIZE_T_CLEAN
#include "ftshim.h"
#include <string.h>

typedef struct {
    PyObject_HEAD
    long long n;
    ftshim_mutex mutex;
    int arrived; /* gate: threads that reached add(); atomic */
} ProbeObject;

static PyTypeObject *probe_type; /* set in exec; one interpreter only */

#define FAIL_IF(call)                                                                   \
    do {                                                                                \
        ftshim_status _st = (call);                                                     \
        if (_st != FTSHIM_OK) {                                                         \
            PyErr_Format(PyExc_RuntimeError, "%s -> %d (%s)", #call, (int)_st,          \
                         ftshim_status_str(_st));                                       \
            return NULL;                                                                \
        }                                                                               \
    } while (0)

/* Waits (GIL released, thread state detached) until `parties` threads have arrived at `gate`, so
 * that their loops start within microseconds of each other instead of a thread wake-up apart. */
static void
gate_wait(ProbeObject *gate, int parties)
{
    __atomic_add_fetch(&gate->arrived, 1, __ATOMIC_SEQ_CST);
    Py_BEGIN_ALLOW_THREADS
    while (__atomic_load_n(&gate->arrived, __ATOMIC_ACQUIRE) < parties) {
    }
    Py_END_ALLOW_THREADS
}

static PyObject *
Probe_add(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"kind", "n", "other", "gate", "parties", NULL};
    ProbeObject *self = (ProbeObject *)op;
    const char *kind;
    Py_ssize_t n;
    PyObject *other_obj = Py_None, *gate = Py_None;
    int parties = 2;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sn|OOi:add", kwlist, &kind, &n, &other_obj, &gate, &parties)) {
        return NULL;
    }
    if (gate != Py_None) {
        if (!PyObject_TypeCheck(gate, probe_type)) {
            PyErr_SetString(PyExc_TypeError, "gate must be a Probe");
            return NULL;
        }
        gate_wait((ProbeObject *)gate, parties);
    }
    int two = strncmp(kind, "section2", 8) == 0;
    if (two && !PyObject_TypeCheck(other_obj, probe_type)) {
        PyErr_SetString(PyExc_TypeError, "the section2 kinds need other=Probe()");
        return NULL;
    }
    ProbeObject *other = (ProbeObject *)other_obj;
    ftshim_critical_section cs;
    if (strcmp(kind, "section") == 0) {
        for (Py_ssize_t i = 0; i < n; i++) {
            FTSHIM_BEGIN_CRITICAL_SECTION(self);
            self->n++;
            FTSHIM_END_CRITICAL_SECTION();
        }
    }
    else if (strcmp(kind, "section_fn") == 0) {
        for (Py_ssize_t i = 0; i < n; i++) {
            FAIL_IF(ftshim_critical_section_begin(&cs, op));
            self->n++;
            FAIL_IF(ftshim_critical_section_end(&cs));
        }
    }
    else if (strcmp(kind, "section2") == 0) {
        for (Py_ssize_t i = 0; i < n; i++) {
            FTSHIM_BEGIN_CRITICAL_SECTION2(self, other);
            self->n++;
            other->n++;
            FTSHIM_END_CRITICAL_SECTION2();
        }
    }
    else if (strcmp(kind, "section2_fn") == 0) {
        for (Py_ssize_t i = 0; i < n; i++) {
            FAIL_IF(ftshim_critical_section2_begin(&cs, op, other_obj));
            self->n++;
            other->n++;
            FAIL_IF(ftshim_critical_section_end(&cs));
        }
    }
    else if (strcmp(kind, "mutex") == 0) {
        for (Py_ssize_t i = 0; i < n; i++) {
            FAIL_IF(ftshim_mutex_lock(&self->mutex));
            self->n++;
            FAIL_IF(ftshim_mutex_unlock(&self->mutex));
        }
    }
    else if (strcmp(kind, "mutex_fn") == 0) {
        for (Py_ssize_t i = 0; i < n; i++) {
            FAIL_IF((ftshim_mutex_lock)(&self->mutex));
            self->n++;
            FAIL_IF((ftshim_mutex_unlock)(&self->mutex));
        }
    }
    else if (strcmp(kind, "mutex_section") == 0) {
        for (Py_ssize_t i = 0; i < n; i++) {
            FTSHIM_BEGIN_CRITICAL_SECTION_MUTEX(&self->mutex);
            self->n++;
            FTSHIM_END_CRITICAL_SECTION_MUTEX();
        }
    }
    else if (strcmp(kind, "mutex_section_fn") == 0) {
        for (Py_ssize_t i = 0; i < n; i++) {
            FAIL_IF(ftshim_critical_section_begin_mutex(&cs, &self->mutex));
            self->n++;
            FAIL_IF(ftshim_critical_section_end(&cs));
        }
    }
    else if (strcmp(kind, "section2_mutex") == 0) {
        for (Py_ssize_t i = 0; i < n; i++) {
            FTSHIM_BEGIN_CRITICAL_SECTION2_MUTEX(&self->mutex, &other->mutex);
            self->n++;
            other->n++;
            FTSHIM_END_CRITICAL_SECTION2_MUTEX();
        }
    }
    else if (strcmp(kind, "section2_mutex_fn") == 0) {
        for (Py_ssize_t i = 0; i < n; i++) {
            FAIL_IF(ftshim_critical_section2_begin_mutex(&cs, &self->mutex, &other->mutex));
            self->n++;
            other->n++;
            FAIL_IF(ftshim_critical_section_end(&cs));
        }
    }
    else if (strcmp(kind, "none") == 0) {
        volatile long long *v = &self->n;
        for (Py_ssize_t i = 0; i < n; i++) {
            *v = *v + 1;
        }
    }
    else {
        PyErr_Format(PyExc_ValueError, "unknown kind '%s'", kind);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Probe_hold_mutex_and_call(PyObject *op, PyObject *fn)
{
    ProbeObject *self = (ProbeObject *)op;
    FAIL_IF(ftshim_mutex_lock(&self->mutex));
    PyObject *result = PyObject_CallNoArgs(fn);
    FAIL_IF(ftshim_mutex_unlock(&self->mutex));
    return result;
}

/* Calls fn() inside a one-object section on self / a mutex section on self->mutex. */
static PyObject *
Probe_section_and_call(PyObject *op, PyObject *fn)
{
    PyObject *result;
    FTSHIM_BEGIN_CRITICAL_SECTION(op);
    result = PyObject_CallNoArgs(fn);
    FTSHIM_END_CRITICAL_SECTION();
    return result;
}

static PyObject *
Probe_mutex_section_and_call(PyObject *op, PyObject *fn)
{
    PyObject *result;
    FTSHIM_BEGIN_CRITICAL_SECTION_MUTEX(&((ProbeObject *)op)->mutex);
    result = PyObject_CallNoArgs(fn);
    FTSHIM_END_CRITICAL_SECTION_MUTEX();
    return result;
}

static PyObject *
Probe_get_n(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(((ProbeObject *)op)->n);
}

static PyObject *
Probe_get_locked(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(ftshim_mutex_is_locked(&((ProbeObject *)op)->mutex));
}

static void
Probe_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyMethodDef Probe_methods[] = {
    {"add", (PyCFunction)(void (*)(void))Probe_add, METH_VARARGS | METH_KEYWORDS,
     "add(kind, n, other=None, gate=None, parties=2)"},
    {"hold_mutex_and_call", Probe_hold_mutex_and_call, METH_O, "hold_mutex_and_call(fn)"},
    {"section_and_call", Probe_section_and_call, METH_O, "section_and_call(fn): fn() in a section on self"},
    {"mutex_section_and_call", Probe_mutex_section_and_call, METH_O,
     "mutex_section_and_call(fn): fn() in a critical section on self's mutex"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Probe_getset[] = {
    {"n", Probe_get_n, NULL, "the counter", NULL},
    {"locked", Probe_get_locked, NULL, "ftshim_mutex_is_locked(&mutex)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Probe_slots[] = {
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_dealloc, (void *)Probe_dealloc},
    {Py_tp_methods, Probe_methods},
    {Py_tp_getset, Probe_getset},
    {0, NULL},
};

static PyType_Spec Probe_spec = {
    .name = "probe.Probe",
    .basicsize = sizeof(ProbeObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Probe_slots,
};

static PyObject *
probe_set_immortal(PyObject *Py_UNUSED(module), PyObject *obj)
{
    return PyLong_FromLong(ftshim_object_set_immortal(obj));
}

static PyObject *
probe_is_immortal(PyObject *Py_UNUSED(module), PyObject *obj)
{
    return PyLong_FromLong(ftshim_object_is_immortal(obj));
}

static PyObject *
probe_hammer(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *obj;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "On:hammer", &obj, &n)) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(obj);
        Py_DECREF(obj);
    }
    Py_RETURN_NONE;
}

static int
put(PyObject *dict, const char *name, long value)
{
    PyObject *v = PyLong_FromLong(value);
    int rc = v == NULL ? -1 : PyDict_SetItemString(dict, name, v);
    Py_XDECREF(v);
    return rc;
}

/* ftshim_module_set_gil_not_used on `obj` (inline or function form); a Python exception CPython
 * raised for a non-module is cleared: the status is the answer. */
static ftshim_status
set_gil_on(PyObject *obj, int fn)
{
    ftshim_status st = fn ? (ftshim_module_set_gil_not_used)(obj) : ftshim_module_set_gil_not_used(obj);
    if (st != FTSHIM_OK) {
        PyErr_Clear();
    }
    return st;
}

static PyObject *
probe_statuses(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    ftshim_critical_section cs;
    ftshim_mutex m = FTSHIM_MUTEX_INIT;
    PyObject *obj = Py_None;
    int failed =
        put(d, "cs_begin_null_storage", ftshim_critical_section_begin(NULL, obj)) ||
        put(d, "cs_begin_null_object", ftshim_critical_section_begin(&cs, NULL)) ||
        put(d, "cs2_begin_null_object", ftshim_critical_section2_begin(&cs, obj, NULL)) ||
        put(d, "cs_begin_mutex_null", ftshim_critical_section_begin_mutex(&cs, NULL)) ||
        put(d, "cs_end_null", ftshim_critical_section_end(NULL)) ||
        put(d, "cs_end_without_begin", (memset(&cs, 0, sizeof cs), ftshim_critical_section_end(&cs))) ||
        put(d, "cs_begin", ftshim_critical_section_begin(&cs, obj)) ||
        put(d, "cs_end", ftshim_critical_section_end(&cs)) ||
        put(d, "cs_end_twice", ftshim_critical_section_end(&cs)) ||
        put(d, "mutex_unlock_unlocked", ftshim_mutex_unlock(&m)) ||
        put(d, "mutex_unlock_unlocked_fn", (ftshim_mutex_unlock)(&m)) ||
        put(d, "mutex_trylock", ftshim_mutex_trylock(&m)) ||
        put(d, "mutex_is_locked_held", ftshim_mutex_is_locked(&m)) ||
        put(d, "mutex_trylock_held", ftshim_mutex_trylock(&m)) ||
        put(d, "mutex_trylock_held_fn", (ftshim_mutex_trylock)(&m)) ||
        put(d, "mutex_unlock", ftshim_mutex_unlock(&m)) ||
        put(d, "mutex_is_locked_free", ftshim_mutex_is_locked(&m)) ||
        put(d, "mutex_lock_null", ftshim_mutex_lock(NULL)) ||
        put(d, "mutex_lock_null_fn", (ftshim_mutex_lock)(NULL)) ||
        put(d, "mutex_unlock_null", ftshim_mutex_unlock(NULL)) ||
        put(d, "mutex_trylock_null", ftshim_mutex_trylock(NULL)) ||
        put(d, "mutex_is_locked_null", ftshim_mutex_is_locked(NULL)) ||
        put(d, "set_immortal_null", ftshim_object_set_immortal(NULL)) ||
        put(d, "is_immortal_null", ftshim_object_is_immortal(NULL)) ||
        /* ABI 1.1 */
        put(d, "cs2_begin_mutex_null", ftshim_critical_section2_begin_mutex(&cs, &m, NULL)) ||
        put(d, "cs2_begin_mutex_null_first", ftshim_critical_section2_begin_mutex(&cs, NULL, &m)) ||
        put(d, "cs2_mutex_same_begin", ftshim_critical_section2_begin_mutex(&cs, &m, &m)) ||
        put(d, "cs2_mutex_same_locked", ftshim_mutex_is_locked(&m)) ||
        put(d, "cs2_mutex_same_end", ftshim_critical_section_end(&cs)) ||
        put(d, "cs2_mutex_same_unlocked", ftshim_mutex_is_locked(&m)) ||
        put(d, "mutex_init_null", ftshim_mutex_init(NULL)) ||
        put(d, "mutex_init_null_fn", (ftshim_mutex_init)(NULL)) ||
        put(d, "mutex_init_held", (ftshim_mutex_trylock(&m), ftshim_mutex_init(&m))) ||
        put(d, "mutex_init_held_fn", (ftshim_mutex_trylock(&m), (ftshim_mutex_init)(&m))) ||
        put(d, "mutex_init_leaves_unlocked", ftshim_mutex_is_locked(&m)) ||
        put(d, "set_gil_null", ftshim_module_set_gil_not_used(NULL)) ||
        put(d, "set_gil_null_fn", (ftshim_module_set_gil_not_used)(NULL)) ||
        put(d, "set_gil_not_a_module", set_gil_on(Py_None, 0)) ||
        put(d, "set_gil_not_a_module_fn", set_gil_on(Py_None, 1));
    if (failed) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static PyObject *
probe_abi(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(IIk)", (unsigned)FTSHIM_ABI_VERSION_MAJOR, (unsigned)FTSHIM_ABI_VERSION_MINOR,
                         (unsigned long)ftshim_abi_version());
}

static PyMethodDef probe_methods[] = {
    {"set_immortal", probe_set_immortal, METH_O, "ftshim_object_set_immortal(obj) -> status"},
    {"is_immortal", probe_is_immortal, METH_O, "ftshim_object_is_immortal(obj)"},
    {"hammer", probe_hammer, METH_VARARGS, "hammer(obj, n): n Py_INCREF/Py_DECREF pairs"},
    {"statuses", probe_statuses, METH_NOARGS, "statuses() -> {case: status}"},
    {"abi", probe_abi, METH_NOARGS, "abi() -> (header major, header minor, ftshim_abi_version())"},
    {NULL, NULL, 0, NULL},
};

static int
probe_exec(PyObject *module)
{
    if (ftshim_check_abi_version() < 0) {
        return -1;
    }
    probe_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Probe_spec, NULL);
    if (probe_type == NULL) {
        return -1;
    }
    return PyModule_AddType(module, probe_type);
}

static PyModuleDef_Slot probe_slots[] = {
    {Py_mod_exec, (void *)probe_exec},
    FTSHIM_MOD_GIL_NOT_USED_SLOT
    {0, NULL},
};

static struct PyModuleDef probe_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "probe",
    .m_doc = "abi-tests fixture exercising every ftshim API.",
    .m_size = 0,
    .m_methods = probe_methods,
    .m_slots = probe_slots,
};

PyMODINIT_FUNC
PyInit_probe(void)
{
    return PyModuleDef_Init(&probe_module);
}
