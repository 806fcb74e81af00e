/*
 * scalebench — `make bench`'s scaling figure (driver: scaling.py): a start gate, a timed window and
 * a C-level call loop, so worker threads start together, stop together and are timed in C.
 * Built for every interpreter; it knows nothing about the workload it drives (extensions/cache).
 *
 *   scalebench.arm(parties)        reset the gate for `parties` workers (before starting them)
 *   scalebench.arrive()            worker: wait, thread state detached, until the window opens
 *   scalebench.stopped()           -> True once the window has closed
 *   scalebench.calls(fn, args)     worker: arrive(), then call fn(a) for a in args, round and
 *                                  round, until the window closes -> (calls made, and what
 *                                  thread_usage() grew by meanwhile: CPU ns, switches)
 *   scalebench.window(parties, s)  main thread: wait until `parties` workers have arrived, open
 *                                  the window, sleep s seconds, close it -> its length in ns
 *   scalebench.calls_between(fn, args, start_ns, end_ns)
 *                                  the same calls in a window given as two CLOCK_MONOTONIC
 *                                  instants (time.monotonic_ns()), which every process on the
 *                                  machine shares: the gate for workers in separate processes
 *                                  -> (calls, CPU ns, voluntary, involuntary, ns started late)
 *   scalebench.thread_usage()      -> (CPU ns, voluntary and involuntary context switches) the
 *                                  calling thread has had so far
 *
 * The calls loop is what the interpreter does for `for a in args: fn(a)` minus the bytecode:
 * a vectorcall of fn with one argument and a decref of the result, so the difference between it
 * and the same loop in Python is the interpreter's share. A worker's usage over the window says
 * whether it really ran for all of it: CPU time short of the window with voluntary switches means
 * it waited (parked on a lock, or for the GIL); involuntary switches mean another process took
 * its CPU.
 */
#define PY_SSIZE_T_CLEAN
#include "ftshim.h"

#include <errno.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>

static int parties_wanted;
static int arrived;
static int open_;
static int closed;

static long long
clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* What the calling thread has used so far: CPU time, and context switches it asked for (waits)
 * and that were forced on it (preemption). */
struct usage {
    long long cpu_ns;
    long long voluntary;
    long long involuntary;
};

static void
thread_usage(struct usage *u)
{
    struct rusage ru;
    u->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        u->voluntary = ru.ru_nvcsw;
        u->involuntary = ru.ru_nivcsw;
    }
    else {
        u->voluntary = u->involuntary = -1;
    }
}

static PyObject *
scalebench_arm(PyObject *Py_UNUSED(module), PyObject *arg)
{
    long parties = PyLong_AsLong(arg);
    if (parties == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (parties < 1 || parties > 64) {
        return PyErr_Format(PyExc_ValueError, "parties is %ld, expected 1..64", parties);
    }
    __atomic_store_n(&parties_wanted, (int)parties, __ATOMIC_SEQ_CST);
    __atomic_store_n(&arrived, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&open_, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&closed, 0, __ATOMIC_SEQ_CST);
    Py_RETURN_NONE;
}

/* Counts this thread in and waits for the window with the thread state detached (so on a GIL build
 * the other workers and the main thread can reach the gate too). */
static void
arrive(void)
{
    Py_BEGIN_ALLOW_THREADS
    __atomic_add_fetch(&arrived, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&open_, __ATOMIC_ACQUIRE)) {
        sched_yield();
    }
    Py_END_ALLOW_THREADS
}

static PyObject *
scalebench_arrive(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    arrive();
    Py_RETURN_NONE;
}

static PyObject *
scalebench_stopped(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(__atomic_load_n(&closed, __ATOMIC_RELAXED));
}

/* Calls fn(a) for each a in `items`, round after round, until the window closes: the in-process
 * window's flag when end_ns is 0, else the monotonic clock passing end_ns (read once a round).
 * Returns the calls made, or -1 with an exception set. */
static long long
call_rounds(PyObject *fn, PyObject *items, long long end_ns)
{
    Py_ssize_t len = PyTuple_GET_SIZE(items);
    long long calls = 0;
    while (end_ns == 0 ? !__atomic_load_n(&closed, __ATOMIC_RELAXED) : clock_ns(CLOCK_MONOTONIC) < end_ns) {
        for (Py_ssize_t i = 0; i < len; i++) {
            PyObject *arg = PyTuple_GET_ITEM(items, i);
            PyObject *result = PyObject_Vectorcall(fn, &arg, 1, NULL);
            if (result == NULL) {
                return -1;
            }
            Py_DECREF(result);
        }
        calls += len;
    }
    return calls;
}

static int
check_items(PyObject *items)
{
    if (PyTuple_GET_SIZE(items) == 0) {
        PyErr_SetString(PyExc_ValueError, "at least one argument to call fn with is needed");
        return -1;
    }
    return 0;
}

static PyObject *
scalebench_calls(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *fn, *items;
    if (!PyArg_ParseTuple(args, "OO!:calls", &fn, &PyTuple_Type, &items) || check_items(items) < 0) {
        return NULL;
    }
    arrive();
    struct usage before, after;
    thread_usage(&before);
    long long calls = call_rounds(fn, items, 0);
    if (calls < 0) {
        return NULL;
    }
    thread_usage(&after);
    return Py_BuildValue("(LLLL)", calls, after.cpu_ns - before.cpu_ns, after.voluntary - before.voluntary,
                         after.involuntary - before.involuntary);
}

static PyObject *
scalebench_calls_between(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *fn, *items;
    long long start_ns, end_ns;
    if (!PyArg_ParseTuple(args, "OO!LL:calls_between", &fn, &PyTuple_Type, &items, &start_ns, &end_ns) ||
        check_items(items) < 0) {
        return NULL;
    }
    if (!(0 < start_ns && start_ns < end_ns)) {
        return PyErr_Format(PyExc_ValueError, "window [%lld, %lld) is empty", start_ns, end_ns);
    }
    struct timespec at = {(time_t)(start_ns / 1000000000LL), (long)(start_ns % 1000000000LL)};
    long long late;
    Py_BEGIN_ALLOW_THREADS
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR) {
    }
    late = clock_ns(CLOCK_MONOTONIC) - start_ns;
    Py_END_ALLOW_THREADS
    struct usage before, after;
    thread_usage(&before);
    long long calls = call_rounds(fn, items, end_ns);
    if (calls < 0) {
        return NULL;
    }
    thread_usage(&after);
    return Py_BuildValue("(LLLLL)", calls, after.cpu_ns - before.cpu_ns, after.voluntary - before.voluntary,
                         after.involuntary - before.involuntary, late);
}

static PyObject *
scalebench_thread_usage(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    struct usage u;
    thread_usage(&u);
    return Py_BuildValue("(LLL)", u.cpu_ns, u.voluntary, u.involuntary);
}

static PyObject *
scalebench_window(PyObject *Py_UNUSED(module), PyObject *args)
{
    int parties;
    double seconds;
    if (!PyArg_ParseTuple(args, "id:window", &parties, &seconds)) {
        return NULL;
    }
    if (parties != __atomic_load_n(&parties_wanted, __ATOMIC_SEQ_CST)) {
        return PyErr_Format(PyExc_ValueError, "window(%d, ...) after arm(%d)", parties, parties_wanted);
    }
    if (!(seconds > 0.0 && seconds < 60.0)) {
        return PyErr_Format(PyExc_ValueError, "seconds is %f, expected (0, 60)", seconds);
    }
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    long long t0, t1;
    Py_BEGIN_ALLOW_THREADS
    while (__atomic_load_n(&arrived, __ATOMIC_ACQUIRE) < parties) {
        sched_yield();
    }
    t0 = clock_ns(CLOCK_MONOTONIC);
    __atomic_store_n(&open_, 1, __ATOMIC_RELEASE);
    nanosleep(&ts, NULL);
    __atomic_store_n(&closed, 1, __ATOMIC_RELEASE);
    t1 = clock_ns(CLOCK_MONOTONIC);
    Py_END_ALLOW_THREADS
    return PyLong_FromLongLong(t1 - t0);
}

static PyMethodDef scalebench_methods[] = {
    {"arm", scalebench_arm, METH_O, "arm(parties): reset the gate for that many workers"},
    {"arrive", scalebench_arrive, METH_NOARGS, "arrive(): wait until the window opens"},
    {"stopped", scalebench_stopped, METH_NOARGS, "stopped() -> True once the window has closed"},
    {"calls", scalebench_calls, METH_VARARGS, "calls(fn, args) -> (calls, CPU ns, voluntary, involuntary)"},
    {"calls_between", scalebench_calls_between, METH_VARARGS,
     "calls_between(fn, args, start_ns, end_ns) -> (calls, CPU ns, voluntary, involuntary, late ns)"},
    {"thread_usage", scalebench_thread_usage, METH_NOARGS, "thread_usage() -> (CPU ns, voluntary, involuntary)"},
    {"window", scalebench_window, METH_VARARGS, "window(parties, seconds) -> the window's ns"},
    {NULL, NULL, 0, NULL},
};

static int
scalebench_exec(PyObject *module)
{
    (void)module;
    return ftshim_check_abi_version() < 0 ? -1 : 0;
}

static PyModuleDef_Slot scalebench_slots[] = {
    {Py_mod_exec, (void *)scalebench_exec},
    FTSHIM_MOD_GIL_NOT_USED_SLOT
    {0, NULL},
};

static struct PyModuleDef scalebench_module = {
    PyModuleDef_HEAD_INIT, .m_name = "scalebench", .m_size = 0, .m_methods = scalebench_methods,
    .m_slots = scalebench_slots,
};

PyMODINIT_FUNC
PyInit_scalebench(void)
{
    return PyModuleDef_Init(&scalebench_module);
}
