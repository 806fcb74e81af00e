/*
 * bank — accounts and transfers: an operation that must change two objects atomically.
 *
 * Porting note: under the GIL, transfer() was atomic for free. On a free-threaded build it takes
 * a two-object critical section on (src, dst): both accounts are locked, lower address first,
 * so two threads transferring in opposite directions cannot deadlock, and a reader taking the
 * same two-object section never sees money in flight.
 *
 *   a = bank.Account(100); b = bank.Account(0)
 *   bank.transfer(a, b, 30, times=1)  -> transfers done (stops early on insufficient funds)
 *   bank.total(a, b)                  -> a.balance + b.balance, read atomically
 *   a.balance
 */
#define PY_SSIZE_T_CLEAN
#include "ftshim.h"

typedef struct {
    PyObject_HEAD
    long long balance;
} AccountObject;

static int
Account_init(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"balance", NULL};
    long long balance = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|L:Account", kwlist, &balance)) {
        return -1;
    }
    if (balance < 0) {
        PyErr_Format(PyExc_ValueError, "opening balance must be >= 0, got %lld", balance);
        return -1;
    }
    FTSHIM_BEGIN_CRITICAL_SECTION(op);
    ((AccountObject *)op)->balance = balance;
    FTSHIM_END_CRITICAL_SECTION();
    return 0;
}

static PyObject *
Account_get_balance(PyObject *op, void *Py_UNUSED(closure))
{
    long long balance;
    FTSHIM_BEGIN_CRITICAL_SECTION(op);
    balance = ((AccountObject *)op)->balance;
    FTSHIM_END_CRITICAL_SECTION();
    return PyLong_FromLongLong(balance);
}

static void
Account_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyGetSetDef Account_getset[] = {
    {"balance", Account_get_balance, NULL, "current balance", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Account_slots[] = {
    {Py_tp_doc, (void *)"A bank account."},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_init, (void *)Account_init},
    {Py_tp_dealloc, (void *)Account_dealloc},
    {Py_tp_getset, Account_getset},
    {0, NULL},
};

static PyType_Spec Account_spec = {
    .name = "bank.Account",
    .basicsize = sizeof(AccountObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Account_slots,
};

typedef struct {
    PyTypeObject *account_type;
} bank_state;

static int
check_account(PyObject *module, PyObject *obj, const char *what)
{
    bank_state *st = (bank_state *)PyModule_GetState(module);
    int ok = PyObject_TypeCheck(obj, st->account_type);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s must be a bank.Account, got %s", what, Py_TYPE(obj)->tp_name);
    }
    return ok;
}

static PyObject *
bank_transfer(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"src", "dst", "amount", "times", NULL};
    PyObject *src, *dst;
    long long amount, times = 1, done = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOL|L:transfer", kwlist, &src, &dst, &amount, &times)) {
        return NULL;
    }
    if (!check_account(module, src, "src") || !check_account(module, dst, "dst")) {
        return NULL;
    }
    if (amount < 0 || times < 0) {
        PyErr_Format(PyExc_ValueError, "amount and times must be >= 0, got %lld and %lld", amount, times);
        return NULL;
    }
    AccountObject *a = (AccountObject *)src, *b = (AccountObject *)dst;
    for (; done < times; done++) {
        int ok;
        FTSHIM_BEGIN_CRITICAL_SECTION2(src, dst);
        ok = a->balance >= amount;
        if (ok) {
            a->balance -= amount;
            b->balance += amount;
        }
        FTSHIM_END_CRITICAL_SECTION2();
        if (!ok) {
            break;
        }
    }
    return PyLong_FromLongLong(done);
}

static PyObject *
bank_total(PyObject *module, PyObject *args)
{
    PyObject *x, *y;
    long long total;
    if (!PyArg_ParseTuple(args, "OO:total", &x, &y)) {
        return NULL;
    }
    if (!check_account(module, x, "first account") || !check_account(module, y, "second account")) {
        return NULL;
    }
    FTSHIM_BEGIN_CRITICAL_SECTION2(x, y);
    total = ((AccountObject *)x)->balance + (x == y ? 0 : ((AccountObject *)y)->balance);
    FTSHIM_END_CRITICAL_SECTION2();
    return PyLong_FromLongLong(total);
}

static PyMethodDef bank_methods[] = {
    {"transfer", (PyCFunction)(void (*)(void))bank_transfer, METH_VARARGS | METH_KEYWORDS,
     "transfer(src, dst, amount, times=1) -> number of transfers done"},
    {"total", bank_total, METH_VARARGS, "total(a, b) -> combined balance, read atomically"},
    {NULL, NULL, 0, NULL},
};

static int
bank_exec(PyObject *module)
{
    if (ftshim_check_abi_version() < 0) {
        return -1;
    }
    bank_state *st = (bank_state *)PyModule_GetState(module);
    st->account_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Account_spec, NULL);
    if (st->account_type == NULL) {
        return -1;
    }
    return PyModule_AddType(module, st->account_type);
}

static int
bank_traverse(PyObject *module, visitproc visit, void *arg)
{
    bank_state *st = (bank_state *)PyModule_GetState(module);
    Py_VISIT(st->account_type);
    return 0;
}

static int
bank_clear(PyObject *module)
{
    bank_state *st = (bank_state *)PyModule_GetState(module);
    Py_CLEAR(st->account_type);
    return 0;
}

static PyModuleDef_Slot bank_slots[] = {
    {Py_mod_exec, (void *)bank_exec},
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef bank_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "bank",
    .m_doc = "Accounts and atomic transfers with two-object critical sections.",
    .m_size = sizeof(bank_state),
    .m_methods = bank_methods,
    .m_slots = bank_slots,
    .m_traverse = bank_traverse,
    .m_clear = bank_clear,
};

PyMODINIT_FUNC
PyInit_bank(void)
{
    return PyModuleDef_Init(&bank_module);
}
