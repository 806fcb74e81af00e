/*
 * checked — drives ftshim's checked mode from Python (tests/checked.rs), and shows the early-exit
 * helper on a real shape. Build it with -DFTSHIM_CHECKED and run with FTSHIM_CHECKED=1.
 *
 *   lock(i) / unlock(i) / trylock(i)   ftshim_mutex_lock/unlock/trylock on mutex i (0..3): status
 *   begin(s, i[, j]) / end(s)          a mutex section (two-mutex with j) in storage slot s (0..3)
 *   obegin(s, obj)                     an object section on obj in storage slot s (end it with end)
 *   olocked(obj)                       1 if obj's own lock (ob_mutex) is held now: FT builds only,
 *                                      0 on GIL builds, which have none
 *   detach()                           detaches the thread state and attaches it again, which
 *                                      suspends the thread's open sections and resumes the top one
 *   mode() / set_mode(m) / clear()     ftshim_checked_mode / _set_mode / _clear
 *   findings()                         [(kind, [lock, ...], thread)]: a lock is "m<i>" for mutex i,
 *                                      "s<k>" for storage slot k, else its address
 *   lookup(d, key)                     d[key] or None, under a critical section on d, through
 *                                      ftshim_with_critical_section (returns early on a miss)
 */
#define PY_SSIZE_T_CLEAN
#include "ftshim.h"

#define N 4
static ftshim_mutex checked_mutexes[N];
static ftshim_critical_section checked_storage[N];

static int
index_arg(PyObject *arg, int *out)
{
    long i = PyLong_AsLong(arg);
    if (i == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (i < 0 || i >= N) {
        PyErr_Format(PyExc_ValueError, "index must be in [0, %d), got %ld", N, i);
        return -1;
    }
    *out = (int)i;
    return 0;
}

static PyObject *
checked_lock(PyObject *Py_UNUSED(m), PyObject *arg)
{
    int i;
    ftshim_status s;
    if (index_arg(arg, &i) < 0) {
        return NULL;
    }
    /* With the thread state attached, so a finding is also a RuntimeWarning. The tests never
     * contend for these mutexes (a waiter detaches anyway, on every version). */
    s = ftshim_mutex_lock(&checked_mutexes[i]);
    return PyLong_FromLong(s);
}

static PyObject *
checked_unlock(PyObject *Py_UNUSED(m), PyObject *arg)
{
    int i;
    if (index_arg(arg, &i) < 0) {
        return NULL;
    }
    return PyLong_FromLong(ftshim_mutex_unlock(&checked_mutexes[i]));
}

static PyObject *
checked_trylock(PyObject *Py_UNUSED(m), PyObject *arg)
{
    int i;
    if (index_arg(arg, &i) < 0) {
        return NULL;
    }
    return PyLong_FromLong(ftshim_mutex_trylock(&checked_mutexes[i]));
}

static PyObject *
checked_begin(PyObject *Py_UNUSED(m), PyObject *args)
{
    int s, i, j = -1;
    if (!PyArg_ParseTuple(args, "ii|i", &s, &i, &j)) {
        return NULL;
    }
    if (s < 0 || s >= N || i < 0 || i >= N || j >= N) {
        PyErr_SetString(PyExc_ValueError, "slot and mutex indexes must be in [0, 4)");
        return NULL;
    }
    if (j < 0) {
        return PyLong_FromLong(ftshim_critical_section_begin_mutex(&checked_storage[s], &checked_mutexes[i]));
    }
    return PyLong_FromLong(
        ftshim_critical_section2_begin_mutex(&checked_storage[s], &checked_mutexes[i], &checked_mutexes[j]));
}

static PyObject *
checked_obegin(PyObject *Py_UNUSED(m), PyObject *args)
{
    int s;
    PyObject *obj;
    if (!PyArg_ParseTuple(args, "iO", &s, &obj)) {
        return NULL;
    }
    if (s < 0 || s >= N) {
        PyErr_SetString(PyExc_ValueError, "slot must be in [0, 4)");
        return NULL;
    }
    return PyLong_FromLong(ftshim_critical_section_begin(&checked_storage[s], obj));
}

static PyObject *
checked_olocked(PyObject *Py_UNUSED(m), PyObject *obj)
{
#ifdef Py_GIL_DISABLED
    return PyLong_FromLong(__atomic_load_n(&obj->ob_mutex._bits, __ATOMIC_RELAXED) & 1);
#else
    (void)obj;
    return PyLong_FromLong(0);
#endif
}

static PyObject *
checked_detach(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(a))
{
    Py_BEGIN_ALLOW_THREADS
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *
checked_end(PyObject *Py_UNUSED(m), PyObject *arg)
{
    int s;
    if (index_arg(arg, &s) < 0) {
        return NULL;
    }
    return PyLong_FromLong(ftshim_critical_section_end(&checked_storage[s]));
}

static PyObject *
checked_mode(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(a))
{
    return PyLong_FromLong(ftshim_checked_mode());
}

static PyObject *
checked_set_mode(PyObject *Py_UNUSED(m), PyObject *arg)
{
    long mode = PyLong_AsLong(arg);
    if (mode == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return PyLong_FromLong(ftshim_checked_set_mode((int)mode));
}

static PyObject *
checked_clear(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(a))
{
    return PyLong_FromLong(ftshim_checked_clear());
}

static PyObject *
lock_name(uintptr_t addr)
{
    for (int i = 0; i < N; i++) {
        if (addr == (uintptr_t)&checked_mutexes[i]) {
            return PyUnicode_FromFormat("m%d", i);
        }
        if (addr == (uintptr_t)&checked_storage[i]) {
            return PyUnicode_FromFormat("s%d", i);
        }
    }
    return PyUnicode_FromFormat("%p", (void *)addr);
}

static PyObject *
checked_findings(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(a))
{
    ftshim_checked_finding found[64];
    uint32_t n = ftshim_checked_findings(found, 64);
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    for (uint32_t k = 0; k < n && k < 64; k++) {
        PyObject *locks = PyList_New(0);
        if (locks == NULL) {
            goto error;
        }
        for (uint32_t l = 0; l < found[k].count && l < 4; l++) {
            PyObject *name = lock_name(found[k].locks[l]);
            if (name == NULL || PyList_Append(locks, name) < 0) {
                Py_XDECREF(name);
                Py_DECREF(locks);
                goto error;
            }
            Py_DECREF(name);
        }
        PyObject *item = Py_BuildValue("(sNK)", ftshim_checked_kind_str(found[k].kind), locks,
                                       (unsigned long long)found[k].thread);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            goto error;
        }
        Py_DECREF(item);
    }
    return list;
error:
    Py_DECREF(list);
    return NULL;
}

/* The early-exit shape: a lookup that returns early on a miss, with every return leaving the
 * section (ftshim_with_critical_section runs it inside one). */
static PyObject *
lookup_locked(PyObject *dict, void *key)
{
    PyObject *value = PyDict_GetItemWithError(dict, (PyObject *)key);
    if (value == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE; /* miss: an early return, and the section still ends */
    }
    return Py_NewRef(value);
}

static PyObject *
checked_lookup(PyObject *Py_UNUSED(m), PyObject *args)
{
    PyObject *dict, *key;
    if (!PyArg_ParseTuple(args, "O!O", &PyDict_Type, &dict, &key)) {
        return NULL;
    }
    return ftshim_with_critical_section(dict, lookup_locked, key);
}

static PyMethodDef checked_methods[] = {
    {"lock", checked_lock, METH_O, NULL},
    {"unlock", checked_unlock, METH_O, NULL},
    {"trylock", checked_trylock, METH_O, NULL},
    {"begin", checked_begin, METH_VARARGS, NULL},
    {"end", checked_end, METH_O, NULL},
    {"obegin", checked_obegin, METH_VARARGS, NULL},
    {"olocked", checked_olocked, METH_O, NULL},
    {"detach", checked_detach, METH_NOARGS, NULL},
    {"mode", checked_mode, METH_NOARGS, NULL},
    {"set_mode", checked_set_mode, METH_O, NULL},
    {"clear", checked_clear, METH_NOARGS, NULL},
    {"findings", checked_findings, METH_NOARGS, NULL},
    {"lookup", checked_lookup, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

FTSHIM_ABI_INFO_VAR(checked_abi_info);

static PyModuleDef_Slot checked_slots[] = {
    FTSHIM_MOD_ABI_SLOT(checked_abi_info)
    FTSHIM_MOD_GIL_NOT_USED_SLOT
    {0, NULL},
};

static struct PyModuleDef checked_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "checked",
    .m_doc = "Drives ftshim's checked mode.",
    .m_size = 0,
    .m_methods = checked_methods,
    .m_slots = checked_slots,
};

PyMODINIT_FUNC
PyInit_checked(void)
{
    return PyModuleDef_Init(&checked_module);
}
