/*
 * cache — a dict-backed memo cache guarded by a per-object ftshim_mutex.
 *
 * Porting note: the GIL-only original kept its dict and statistics unguarded, relying on the GIL.
 * On a free-threaded build two threads could race on the hit/miss counters and compute the same
 * expensive value twice. Here every access takes self->mutex (one byte in the object). The
 * uncontended path is an inline compare-and-swap; a waiting thread parks and releases the GIL /
 * detaches its thread state, so get_or_compute may call back into Python while holding the mutex
 * without deadlocking other threads that wait for it (on every supported interpreter).
 *
 *   c = cache.Cache()
 *   c.set(key, value); c.get(key, default=None)
 *   c.get_or_compute(key, fn)  -> value   (fn() runs at most once per key, under the mutex)
 *   c.stats() -> (hits, misses); len(c)
 *
 * fn must not use the same cache (the mutex is not re-entrant).
 */
#define PY_SSIZE_T_CLEAN
#include "ftshim.h"

typedef struct {
    PyObject_HEAD
    ftshim_mutex mutex;
    PyObject *data; /* dict, guarded by mutex */
    long long hits, misses;
} CacheObject;

static PyObject *
Cache_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    CacheObject *self = (CacheObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->data = PyDict_New();
    if (self->data == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
Cache_traverse(PyObject *op, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(((CacheObject *)op)->data);
    return 0;
}

static int
Cache_clear(PyObject *op)
{
    Py_CLEAR(((CacheObject *)op)->data);
    return 0;
}

static void
Cache_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    (void)Cache_clear(op);
    tp->tp_free(op);
    Py_DECREF(tp);
}

/* Looks `key` up with the mutex held; returns a new reference or NULL (error set, or not found
 * with no error). */
static PyObject *
lookup_locked(CacheObject *self, PyObject *key)
{
    PyObject *value = PyDict_GetItemWithError(self->data, key); /* borrowed */
    if (value != NULL) {
        self->hits++;
        Py_INCREF(value);
    }
    else if (!PyErr_Occurred()) {
        self->misses++;
    }
    return value;
}

static PyObject *
Cache_get(PyObject *op, PyObject *args)
{
    CacheObject *self = (CacheObject *)op;
    PyObject *key, *dflt = Py_None;
    if (!PyArg_ParseTuple(args, "O|O:get", &key, &dflt)) {
        return NULL;
    }
    ftshim_mutex_lock(&self->mutex);
    PyObject *value = lookup_locked(self, key);
    ftshim_mutex_unlock(&self->mutex);
    if (value == NULL && !PyErr_Occurred()) {
        value = Py_NewRef(dflt);
    }
    return value;
}

static PyObject *
Cache_set(PyObject *op, PyObject *args)
{
    CacheObject *self = (CacheObject *)op;
    PyObject *key, *value;
    if (!PyArg_ParseTuple(args, "OO:set", &key, &value)) {
        return NULL;
    }
    ftshim_mutex_lock(&self->mutex);
    int rc = PyDict_SetItem(self->data, key, value);
    ftshim_mutex_unlock(&self->mutex);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Cache_get_or_compute(PyObject *op, PyObject *args)
{
    CacheObject *self = (CacheObject *)op;
    PyObject *key, *fn;
    if (!PyArg_ParseTuple(args, "OO:get_or_compute", &key, &fn)) {
        return NULL;
    }
    ftshim_mutex_lock(&self->mutex);
    PyObject *value = lookup_locked(self, key);
    if (value == NULL && !PyErr_Occurred()) {
        /* Computed under the mutex, so concurrent callers wait instead of computing it too. */
        value = PyObject_CallNoArgs(fn);
        if (value != NULL && PyDict_SetItem(self->data, key, value) < 0) {
            Py_CLEAR(value);
        }
    }
    ftshim_mutex_unlock(&self->mutex);
    return value;
}

static PyObject *
Cache_stats(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    CacheObject *self = (CacheObject *)op;
    ftshim_mutex_lock(&self->mutex);
    long long hits = self->hits, misses = self->misses;
    ftshim_mutex_unlock(&self->mutex);
    return Py_BuildValue("(LL)", hits, misses);
}

static Py_ssize_t
Cache_len(PyObject *op)
{
    CacheObject *self = (CacheObject *)op;
    ftshim_mutex_lock(&self->mutex);
    Py_ssize_t n = PyDict_Size(self->data);
    ftshim_mutex_unlock(&self->mutex);
    return n;
}

static PyMethodDef Cache_methods[] = {
    {"get", Cache_get, METH_VARARGS, "get(key, default=None)"},
    {"set", Cache_set, METH_VARARGS, "set(key, value)"},
    {"get_or_compute", Cache_get_or_compute, METH_VARARGS,
     "get_or_compute(key, fn): the cached value, computing fn() under the cache's mutex if absent"},
    {"stats", Cache_stats, METH_NOARGS, "stats() -> (hits, misses)"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Cache_slots[] = {
    {Py_tp_doc, (void *)"A memo cache safe to share between threads."},
    {Py_tp_new, (void *)Cache_new},
    {Py_tp_dealloc, (void *)Cache_dealloc},
    {Py_tp_traverse, (void *)Cache_traverse},
    {Py_tp_clear, (void *)Cache_clear},
    {Py_tp_methods, Cache_methods},
    {Py_mp_length, (void *)Cache_len},
    {0, NULL},
};

static PyType_Spec Cache_spec = {
    .name = "cache.Cache",
    .basicsize = sizeof(CacheObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Cache_slots,
};

static int
cache_exec(PyObject *module)
{
    if (ftshim_check_abi_version() < 0) {
        return -1;
    }
    PyObject *type = PyType_FromModuleAndSpec(module, &Cache_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    int rc = PyModule_AddType(module, (PyTypeObject *)type);
    Py_DECREF(type);
    return rc;
}

static PyModuleDef_Slot cache_slots[] = {
    {Py_mod_exec, (void *)cache_exec},
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef cache_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "cache",
    .m_doc = "A memo cache guarded by a per-object ftshim_mutex.",
    .m_size = 0,
    .m_slots = cache_slots,
};

PyMODINIT_FUNC
PyInit_cache(void)
{
    return PyModuleDef_Init(&cache_module);
}
