/*
 * contend — `make bench`'s contention figure: N OS threads (no Python thread state) hammer one lock
 * for a fixed time, each doing a short critical section (one shared increment), and report the
 * total lock/unlock pairs and the fairness (max/min pairs per thread).
 *
 *   contend.run(kind, threads, seconds) -> (total, min_per_thread, max_per_thread)
 *
 * kinds: "ftshim" (ftshim_mutex, the header's inline fast path), "pymutex" (CPython's PyMutex,
 * 3.13+), "pythread" (PyThread_type_lock: what code used before PyMutex, and what Cython's
 * pymutex falls back to on 3.11/3.12).
 */
#define PY_SSIZE_T_CLEAN
#include "ftshim.h"
#include "pythread.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

enum kind { K_FTSHIM, K_PYMUTEX, K_PYTHREAD };

static ftshim_mutex shim_mutex;
#if PY_VERSION_HEX >= 0x030D0000
static PyMutex py_mutex;
#endif
static PyThread_type_lock thread_lock;
static volatile long long shared;
static volatile int stop;
static volatile int started;

struct worker {
    pthread_t thread;
    enum kind kind;
    int parties;
    long long count;
};

static void *
work(void *arg)
{
    struct worker *w = arg;
    long long n = 0;
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&started, __ATOMIC_ACQUIRE) < w->parties) {
    }
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        switch (w->kind) {
        case K_FTSHIM:
            (void)ftshim_mutex_lock(&shim_mutex);
            shared++;
            (void)ftshim_mutex_unlock(&shim_mutex);
            break;
        case K_PYMUTEX:
#if PY_VERSION_HEX >= 0x030D0000
            PyMutex_Lock(&py_mutex);
            shared++;
            PyMutex_Unlock(&py_mutex);
#endif
            break;
        case K_PYTHREAD:
            PyThread_acquire_lock(thread_lock, WAIT_LOCK);
            shared++;
            PyThread_release_lock(thread_lock);
            break;
        }
        n++;
    }
    w->count = n;
    return NULL;
}

static PyObject *
contend_run(PyObject *Py_UNUSED(module), PyObject *args)
{
    const char *name;
    int threads;
    double seconds;
    if (!PyArg_ParseTuple(args, "sid:run", &name, &threads, &seconds)) {
        return NULL;
    }
    enum kind kind;
    if (strcmp(name, "ftshim") == 0) {
        kind = K_FTSHIM;
    } else if (strcmp(name, "pymutex") == 0 && PY_VERSION_HEX >= 0x030D0000) {
        kind = K_PYMUTEX;
    } else if (strcmp(name, "pythread") == 0) {
        kind = K_PYTHREAD;
    } else {
        return PyErr_Format(PyExc_ValueError, "unknown or unavailable kind '%s'", name);
    }
    if (threads < 1 || threads > 64) {
        return PyErr_Format(PyExc_ValueError, "threads is %d, expected 1..64", threads);
    }
    struct worker workers[64];
    shared = 0;
    stop = 0;
    started = 0;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < threads; i++) {
        workers[i].kind = kind;
        workers[i].parties = threads;
        workers[i].count = 0;
        if (pthread_create(&workers[i].thread, NULL, work, &workers[i]) != 0) {
            failed = 1;
            threads = i;
            break;
        }
    }
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    if (!failed) {
        nanosleep(&ts, NULL);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < threads; i++) {
        pthread_join(workers[i].thread, NULL);
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        return PyErr_Format(PyExc_RuntimeError, "pthread_create failed");
    }
    long long total = 0, lo = -1, hi = 0;
    for (int i = 0; i < threads; i++) {
        total += workers[i].count;
        lo = (lo < 0 || workers[i].count < lo) ? workers[i].count : lo;
        hi = workers[i].count > hi ? workers[i].count : hi;
    }
    if (total != shared) {
        return PyErr_Format(PyExc_AssertionError, "lost updates: %lld pairs, shared counter %lld", total, shared);
    }
    return Py_BuildValue("(LLL)", total, lo, hi);
}

static PyMethodDef contend_methods[] = {
    {"run", contend_run, METH_VARARGS, "run(kind, threads, seconds) -> (total, min, max)"},
    {NULL, NULL, 0, NULL},
};

static int
contend_exec(PyObject *module)
{
    (void)module;
    if (ftshim_check_abi_version() < 0) {
        return -1;
    }
    thread_lock = PyThread_allocate_lock();
    return thread_lock == NULL ? -1 : 0;
}

static PyModuleDef_Slot contend_slots[] = {
    {Py_mod_exec, (void *)contend_exec},
    FTSHIM_MOD_GIL_NOT_USED_SLOT
    {0, NULL},
};

static struct PyModuleDef contend_module = {
    PyModuleDef_HEAD_INIT, .m_name = "contend", .m_size = 0, .m_methods = contend_methods,
    .m_slots = contend_slots,
};

PyMODINIT_FUNC
PyInit_contend(void)
{
    return PyModuleDef_Init(&contend_module);
}
