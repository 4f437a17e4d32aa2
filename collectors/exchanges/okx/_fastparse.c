/* The compiled trade fast path: OKX's one-row trade pushes read, checked and built in C.
 *
 * It reads exactly the frames the pure-Python fast path's pattern reads (fast.py, _TRADES_ALL and _TRADES:
 * OKX's key order, compact JSON, no escapes, one row) and applies the same domain rules that the Python path
 * then applies (collectors.validation.check_trade and the count rule of rows.build_trade). For such a frame it
 * builds the same TradesPush holding the same Trade (the same str, int and Decimal values: Decimal is built
 * from the wire text by the decimal.Decimal passed in, so exponent and trailing zeros are kept). For anything
 * else it returns None and the Python parser decides, accepting or rejecting with its reason: this code never
 * rejects and never accepts what the Python path would refuse. tests/exchanges/test_okx_fastparse.py holds
 * the two paths together on real, mutated and hostile frames.
 *
 * Safety: the input is an exact str that must be ASCII (compact 1-byte data), at most MAX_FRAME_LEN
 * characters; every read goes through the Cursor below, which checks the end before each byte; every field
 * has a length cap (ids 19 digits, numbers 40 + 40 digits, instId 64, source 16, seqId 18); no recursion. The records
 * are allocated through their types' tp_alloc and their slots filled at the member offsets read (and
 * checked) from the classes when a TradeParser is built, as the Python builders (collectors.model.new_trade,
 * events.new_trades_push) fill them by plain slot stores.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

/* Longer frames are left to Python (the longest frame the pattern admits has 528 characters). */
#define MAX_FRAME_LEN 1024
#define MAX_DIGITS 19   /* ids, timestamps, count: \d{1,19} */
#define MAX_SEQ_ID 18   /* seqId: -?(0|[1-9]\d{0,17}) */
#define MAX_NUM_PART 40 /* px, sz: -?\d{1,40}(\.\d{1,40})? */
#define MAX_INST 64     /* [A-Z0-9][A-Z0-9-]{0,63} */
#define MAX_SOURCE 16   /* [0-9]{1,16} */

static const char *const TRADE_FIELDS[] = {"exchange", "inst_id", "trade_id", "ts_ms", "price",
                                           "size",     "side",    "recv_ms",  "source"};
enum { T_EXCHANGE, T_INST_ID, T_TRADE_ID, T_TS_MS, T_PRICE, T_SIZE, T_SIDE, T_RECV_MS, T_SOURCE, N_TRADE };
static const char *const PUSH_FIELDS[] = {"channel", "inst_id", "trades", "counts", "recv_ms", "rejected"};
enum { P_CHANNEL, P_INST_ID, P_TRADES, P_COUNTS, P_RECV_MS, P_REJECTED, N_PUSH };

typedef struct {
    PyObject_HEAD
    PyTypeObject *trade_type;
    PyTypeObject *push_type;
    PyObject *buy;
    PyObject *sell;
    PyObject *decimal;
    PyObject *exchange; /* "okx" */
    PyObject *trades_all; /* "trades-all" */
    PyObject *trades; /* "trades" */
    PyObject *one; /* (1,) */
    PyObject *empty; /* () */
    long long ts_min;
    long long ts_max;
    Py_ssize_t trade_offsets[N_TRADE];
    Py_ssize_t push_offsets[N_PUSH];
} TradeParser;

/* ---- the scanner: every read checks the end first ---- */

typedef struct {
    const char *p;
    const char *end;
} Cursor;

static inline int
literal(Cursor *c, const char *s, size_t len)
{
    if ((size_t)(c->end - c->p) < len || memcmp(c->p, s, len) != 0) {
        return 0;
    }
    c->p += len;
    return 1;
}
#define LIT(c, s) literal((c), (s), sizeof(s) - 1)

static inline int
is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* 1..max ASCII digits; the count, or 0 when there is none or more than max. */
static Py_ssize_t
digits(Cursor *c, Py_ssize_t max)
{
    const char *start = c->p;
    while (c->p < c->end && is_digit(*c->p)) {
        if (c->p - start == max) {
            return 0;
        }
        c->p++;
    }
    return c->p - start;
}

/* The value of 1..19 ASCII digits (fits: 10**19 - 1 < 2**64). */
static uint64_t
digits_value(const char *p, Py_ssize_t n)
{
    uint64_t v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    return v;
}

/* 1..max digits then a closing quote; their value in *value (the caller checks its range). */
static int
quoted_digits(Cursor *c, Py_ssize_t max, uint64_t *value)
{
    const char *start = c->p;
    Py_ssize_t n = digits(c, max);
    if (n == 0 || !LIT(c, "\"")) {
        return 0;
    }
    *value = digits_value(start, n);
    return 1;
}

/* -?\d{1,40}(\.\d{1,40})? then a quote; *positive: no sign and some digit not 0 (so Decimal > 0). */
static int
number(Cursor *c, const char **start, Py_ssize_t *len, int *positive)
{
    int negative = 0, nonzero = 0;
    *start = c->p;
    if (c->p < c->end && *c->p == '-') {
        negative = 1;
        c->p++;
    }
    const char *d = c->p;
    Py_ssize_t n = digits(c, MAX_NUM_PART);
    if (n == 0) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        nonzero |= d[i] != '0';
    }
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        d = c->p;
        n = digits(c, MAX_NUM_PART);
        if (n == 0) {
            return 0;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            nonzero |= d[i] != '0';
        }
    }
    *len = c->p - *start;
    *positive = !negative && nonzero;
    return LIT(c, "\"");
}

/* OKX's seqId value, matched, not kept: -?(0|[1-9]\d{0,17}), fast.py's _SEQ_ID (a JSON integer that orjson
 * reads as an int: no leading zero, and no more than 18 digits). */
static int
seq_id(Cursor *c)
{
    if (c->p < c->end && *c->p == '-') {
        c->p++;
    }
    if (c->p < c->end && *c->p == '0') {
        c->p++;
        return c->p == c->end || !is_digit(*c->p);
    }
    return digits(c, MAX_SEQ_ID) != 0;
}

/* [A-Z0-9][A-Z0-9-]{0,63} then a quote. */
static int
inst_id(Cursor *c, const char **start, Py_ssize_t *len)
{
    *start = c->p;
    while (c->p < c->end) {
        char ch = *c->p;
        int upper_or_digit = (ch >= 'A' && ch <= 'Z') || is_digit(ch);
        if (!(upper_or_digit || (ch == '-' && c->p > *start))) {
            break;
        }
        if (c->p - *start == MAX_INST) {
            return 0;
        }
        c->p++;
    }
    *len = c->p - *start;
    return *len > 0 && LIT(c, "\"");
}

/* ---- building the records ---- */

static PyObject *
ascii_str(const char *p, Py_ssize_t n)
{
    PyObject *s = PyUnicode_New(n, 127);
    if (s != NULL) {
        memcpy(PyUnicode_DATA(s), p, (size_t)n);
    }
    return s;
}

static inline void
set_slot(PyObject *obj, Py_ssize_t offset, PyObject *value)
{
    /* the slot is NULL (fresh object); the reference is stolen */
    *(PyObject **)((char *)obj + offset) = value;
}

/* A Decimal of the wire text (new reference). No memo: building the key str and looking it up costs about
 * what Decimal() of a short text costs (measured: a memo made this path slower). */
static PyObject *
decimal_of(TradeParser *self, const char *p, Py_ssize_t n)
{
    PyObject *text = ascii_str(p, n);
    if (text == NULL) {
        return NULL;
    }
    PyObject *value = PyObject_CallOneArg(self->decimal, text);
    Py_DECREF(text);
    return value;
}

/* ---- TradeParser.parse(text, recv_ms) ---- */

static PyObject *
TradeParser_parse(TradeParser *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "parse() takes 2 positional arguments (text, recv_ms), %zd given",
                     nargs);
        return NULL;
    }
    PyObject *text = args[0], *recv = args[1];
    if (!PyUnicode_CheckExact(text)) {
        Py_RETURN_NONE;
    }
    if (PyUnicode_READY(text) < 0) {
        return NULL;
    }
    Py_ssize_t size = PyUnicode_GET_LENGTH(text);
    if (!PyUnicode_IS_ASCII(text) || size > MAX_FRAME_LEN || !PyLong_CheckExact(recv)) {
        Py_RETURN_NONE;
    }
    int overflow = 0;
    long long recv_ms = PyLong_AsLongLongAndOverflow(recv, &overflow);
    if (overflow != 0 || recv_ms < self->ts_min || recv_ms >= self->ts_max) {
        Py_RETURN_NONE; /* check_trade refuses it: Python names the rule */
    }

    Cursor c = {(const char *)PyUnicode_DATA(text), (const char *)PyUnicode_DATA(text) + size};
    int all;
    if (!LIT(&c, "{\"arg\":{\"channel\":\"trades")) {
        Py_RETURN_NONE;
    }
    if (LIT(&c, "-all\"")) {
        all = 1;
    }
    else if (LIT(&c, "\"")) {
        all = 0;
    }
    else {
        Py_RETURN_NONE;
    }
    const char *inst, *row_inst, *px, *sz, *source;
    Py_ssize_t inst_len, row_inst_len, px_len, sz_len, source_len;
    int px_positive, sz_positive, buy;
    uint64_t trade_id, ts, count = 1;
    if (!LIT(&c, ",\"instId\":\"") || !inst_id(&c, &inst, &inst_len) ||
        !LIT(&c, "},\"data\":[{\"instId\":\"") || !inst_id(&c, &row_inst, &row_inst_len) ||
        row_inst_len != inst_len || memcmp(inst, row_inst, (size_t)inst_len) != 0 ||
        !LIT(&c, ",\"tradeId\":\"") || !quoted_digits(&c, MAX_DIGITS, &trade_id) ||
        !LIT(&c, ",\"px\":\"") || !number(&c, &px, &px_len, &px_positive) || !LIT(&c, ",\"sz\":\"") ||
        !number(&c, &sz, &sz_len, &sz_positive) || !LIT(&c, ",\"side\":\"")) {
        Py_RETURN_NONE;
    }
    if (LIT(&c, "buy\"")) {
        buy = 1;
    }
    else if (LIT(&c, "sell\"")) {
        buy = 0;
    }
    else {
        Py_RETURN_NONE;
    }
    if (all) {
        if (!LIT(&c, ",\"source\":\"")) {
            Py_RETURN_NONE;
        }
        source = c.p;
        source_len = digits(&c, MAX_SOURCE);
        if (source_len == 0 || !LIT(&c, "\",\"ts\":\"") || !quoted_digits(&c, MAX_DIGITS, &ts)) {
            Py_RETURN_NONE;
        }
        if (c.p < c.end && *c.p == ',' && !(LIT(&c, ",\"seqId\":") && seq_id(&c))) {
            Py_RETURN_NONE;
        }
    }
    else {
        if (!LIT(&c, ",\"ts\":\"") || !quoted_digits(&c, MAX_DIGITS, &ts) || !LIT(&c, ",\"count\":\"") ||
            !quoted_digits(&c, MAX_DIGITS, &count) || !LIT(&c, ",\"source\":\"")) {
            Py_RETURN_NONE;
        }
        source = c.p;
        source_len = digits(&c, MAX_SOURCE);
        if (source_len == 0 || !LIT(&c, "\",\"seqId\":") || !seq_id(&c)) {
            Py_RETURN_NONE;
        }
    }
    if (!LIT(&c, "}]}") || c.p != c.end) {
        Py_RETURN_NONE;
    }
    /* the domain rules (check_trade, and build_trade's count); a frame breaking one is Python's to reject */
    if (trade_id > (uint64_t)INT64_MAX || ts < (uint64_t)self->ts_min || ts >= (uint64_t)self->ts_max ||
        !px_positive || !sz_positive || count < 1 || count > trade_id + 1) {
        Py_RETURN_NONE;
    }

    PyObject *trade = NULL, *push = NULL, *inst_str = NULL, *trades = NULL, *counts = NULL;
    PyObject *price = decimal_of(self, px, px_len);
    PyObject *size_value = price == NULL ? NULL : decimal_of(self, sz, sz_len);
    if (size_value == NULL) {
        goto error;
    }
    inst_str = ascii_str(inst, inst_len);
    if (inst_str == NULL) {
        goto error;
    }
    PyObject *source_str = ascii_str(source, source_len);
    PyObject *trade_id_int = PyLong_FromLongLong((long long)trade_id);
    PyObject *ts_int = PyLong_FromLongLong((long long)ts);
    trade = self->trade_type->tp_alloc(self->trade_type, 0);
    if (source_str == NULL || trade_id_int == NULL || ts_int == NULL || trade == NULL) {
        Py_XDECREF(source_str);
        Py_XDECREF(trade_id_int);
        Py_XDECREF(ts_int);
        goto error;
    }
    Py_ssize_t *t = self->trade_offsets;
    set_slot(trade, t[T_EXCHANGE], Py_NewRef(self->exchange));
    set_slot(trade, t[T_INST_ID], Py_NewRef(inst_str));
    set_slot(trade, t[T_TRADE_ID], trade_id_int);
    set_slot(trade, t[T_TS_MS], ts_int);
    set_slot(trade, t[T_PRICE], price);
    price = NULL;
    set_slot(trade, t[T_SIZE], size_value);
    size_value = NULL;
    set_slot(trade, t[T_SIDE], Py_NewRef(buy ? self->buy : self->sell));
    set_slot(trade, t[T_RECV_MS], Py_NewRef(recv));
    set_slot(trade, t[T_SOURCE], source_str);

    trades = PyTuple_New(1);
    if (trades == NULL) {
        goto error;
    }
    PyTuple_SET_ITEM(trades, 0, trade);
    trade = NULL;
    if (all) {
        counts = Py_NewRef(self->one);
    }
    else {
        counts = PyTuple_New(1);
        /* unsigned: count <= tradeId + 1 <= 2**63, one past INT64_MAX (a signed cast made it -2**63) */
        PyObject *count_int = counts == NULL ? NULL : PyLong_FromUnsignedLongLong(count);
        if (count_int == NULL) {
            goto error;
        }
        PyTuple_SET_ITEM(counts, 0, count_int);
    }
    push = self->push_type->tp_alloc(self->push_type, 0);
    if (push == NULL) {
        goto error;
    }
    Py_ssize_t *o = self->push_offsets;
    set_slot(push, o[P_CHANNEL], Py_NewRef(all ? self->trades_all : self->trades));
    set_slot(push, o[P_INST_ID], inst_str);
    set_slot(push, o[P_TRADES], trades);
    set_slot(push, o[P_COUNTS], counts);
    set_slot(push, o[P_RECV_MS], Py_NewRef(recv));
    set_slot(push, o[P_REJECTED], Py_NewRef(self->empty));
    return push;

error:
    Py_XDECREF(price);
    Py_XDECREF(size_value);
    Py_XDECREF(inst_str);
    Py_XDECREF(trade);
    Py_XDECREF(trades);
    Py_XDECREF(counts);
    return NULL;
}

/* ---- construction: the record classes are checked once here ---- */

/* The offset of a writable object slot ``name`` defined by ``type`` itself (a __slots__ member). */
static int
slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *offset)
{
    PyObject *descr = PyDict_GetItemString(type->tp_dict, name); /* borrowed */
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type) ||
        ((PyMemberDescrObject *)descr)->d_common.d_type != type) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a slot of the class", type->tp_name, name);
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX || (member->flags & READONLY) || member->offset <= 0 ||
        member->offset + (Py_ssize_t)sizeof(PyObject *) > type->tp_basicsize) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a writable object slot", type->tp_name, name);
        return -1;
    }
    *offset = member->offset;
    return 0;
}

/* ``type`` must be a plain slotted class whose __slots__ are exactly ``names`` (so every slot gets filled) and
 * whose instances object.__new__ makes (no __new__ of its own, no __dict__). */
static int
record_offsets(PyObject *obj, const char *const *names, Py_ssize_t count, Py_ssize_t *offsets)
{
    if (!PyType_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "expected a class");
        return -1;
    }
    PyTypeObject *type = (PyTypeObject *)obj;
    if (type->tp_new != PyBaseObject_Type.tp_new || type->tp_dictoffset != 0 ||
        type->tp_itemsize != 0 || type->tp_alloc == NULL) {
        PyErr_Format(PyExc_TypeError, "%s is not a plain slotted class", type->tp_name);
        return -1;
    }
    PyObject *slots = PyObject_GetAttrString(obj, "__slots__");
    if (slots == NULL) {
        return -1;
    }
    int same = PyTuple_Check(slots) && PyTuple_GET_SIZE(slots) == count;
    for (Py_ssize_t i = 0; same && i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(slots, i);
        same = PyUnicode_Check(item) && PyUnicode_CompareWithASCIIString(item, names[i]) == 0;
    }
    Py_DECREF(slots);
    if (!same) {
        PyErr_Format(PyExc_TypeError, "%s.__slots__ is not the fields this parser fills", type->tp_name);
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (slot_offset(type, names[i], &offsets[i]) < 0) {
            return -1;
        }
    }
    return 0;
}

/* No field set: never built, or wholly cleared. */
static int
unbuilt(TradeParser *self)
{
    return self->trade_type == NULL && self->push_type == NULL && self->buy == NULL && self->sell == NULL &&
           self->decimal == NULL && self->exchange == NULL && self->trades_all == NULL && self->trades == NULL &&
           self->one == NULL && self->empty == NULL;
}

/* Built once: a second __init__ is refused (a parser's classes and offsets never change while it may be in
 * use), and nothing is stored until every check passed and every object exists, so a failed __init__ leaves
 * the parser unbuilt (parse() raises) rather than half built (offsets of one class, objects of another).
 * Python code can run before the stores (the classes' __slots__ are read through their metaclass; any
 * allocation may run a finalizer) and may build this parser meanwhile: so the check is repeated right before
 * the stores, which are plain assignments into empty fields and run no code. */
static int
TradeParser_init(TradeParser *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"trade_type", "push_type", "buy", "sell", "decimal_type",
                             "ts_min_ms",  "ts_max_ms", NULL};
    PyObject *trade_type, *push_type, *buy, *sell, *decimal;
    long long ts_min, ts_max;
    if (!unbuilt(self)) {
        PyErr_SetString(PyExc_RuntimeError, "TradeParser is already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "$OOOOOLL", kwlist, &trade_type, &push_type, &buy, &sell,
                                     &decimal, &ts_min, &ts_max)) {
        return -1;
    }
    if (ts_min < 0 || ts_max <= ts_min) {
        PyErr_SetString(PyExc_ValueError, "need 0 <= ts_min_ms < ts_max_ms");
        return -1;
    }
    if (!PyCallable_Check(decimal)) {
        PyErr_SetString(PyExc_TypeError, "decimal_type must be callable");
        return -1;
    }
    Py_ssize_t trade_offsets[N_TRADE], push_offsets[N_PUSH];
    if (record_offsets(trade_type, TRADE_FIELDS, N_TRADE, trade_offsets) < 0 ||
        record_offsets(push_type, PUSH_FIELDS, N_PUSH, push_offsets) < 0) {
        return -1;
    }
    PyObject *exchange = PyUnicode_InternFromString("okx");
    PyObject *trades_all = PyUnicode_InternFromString("trades-all");
    PyObject *trades = PyUnicode_InternFromString("trades");
    PyObject *one = Py_BuildValue("(i)", 1);
    PyObject *empty = PyTuple_New(0);
    if (exchange == NULL || trades_all == NULL || trades == NULL || one == NULL || empty == NULL ||
        !unbuilt(self)) {
        if (exchange != NULL && trades_all != NULL && trades != NULL && one != NULL && empty != NULL) {
            PyErr_SetString(PyExc_RuntimeError, "TradeParser is already initialised");
        }
        Py_XDECREF(exchange);
        Py_XDECREF(trades_all);
        Py_XDECREF(trades);
        Py_XDECREF(one);
        Py_XDECREF(empty);
        return -1;
    }
    /* from here no Python code runs: plain stores into empty fields */
    memcpy(self->trade_offsets, trade_offsets, sizeof(trade_offsets));
    memcpy(self->push_offsets, push_offsets, sizeof(push_offsets));
    self->ts_min = ts_min;
    self->ts_max = ts_max;
    self->push_type = (PyTypeObject *)Py_NewRef(push_type);
    self->buy = Py_NewRef(buy);
    self->sell = Py_NewRef(sell);
    self->decimal = Py_NewRef(decimal);
    self->exchange = exchange;
    self->trades_all = trades_all;
    self->trades = trades;
    self->one = one;
    self->empty = empty;
    self->trade_type = (PyTypeObject *)Py_NewRef(trade_type);
    return 0;
}

static int
TradeParser_traverse(TradeParser *self, visitproc visit, void *arg)
{
    Py_VISIT(self->trade_type);
    Py_VISIT(self->push_type);
    Py_VISIT(self->buy);
    Py_VISIT(self->sell);
    Py_VISIT(self->decimal);
    return 0;
}

static int
TradeParser_clear(TradeParser *self)
{
    Py_CLEAR(self->trade_type);
    Py_CLEAR(self->push_type);
    Py_CLEAR(self->buy);
    Py_CLEAR(self->sell);
    Py_CLEAR(self->decimal);
    Py_CLEAR(self->exchange);
    Py_CLEAR(self->trades_all);
    Py_CLEAR(self->trades);
    Py_CLEAR(self->one);
    Py_CLEAR(self->empty);
    return 0;
}

static void
TradeParser_dealloc(TradeParser *self)
{
    PyObject_GC_UnTrack(self);
    TradeParser_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
TradeParser_call_parse(TradeParser *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (self->trade_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "TradeParser was not initialised");
        return NULL;
    }
    return TradeParser_parse(self, args, nargs);
}

static PyMethodDef TradeParser_methods[] = {
    {"parse", (PyCFunction)(void (*)(void))TradeParser_call_parse, METH_FASTCALL,
     "parse(text, recv_ms, /): the TradesPush of a one-row OKX trade frame in OKX's key order, or None "
     "(the Python parser decides)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TradeParserType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "collectors.exchanges.okx._fastparse.TradeParser",
    .tp_basicsize = sizeof(TradeParser),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "TradeParser(*, trade_type, push_type, buy, sell, decimal_type, ts_min_ms, ts_max_ms): "
              "the compiled trade fast path (collectors/exchanges/okx/fast.py builds it).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)TradeParser_init,
    .tp_dealloc = (destructor)TradeParser_dealloc,
    .tp_traverse = (traverseproc)TradeParser_traverse,
    .tp_clear = (inquiry)TradeParser_clear,
    .tp_methods = TradeParser_methods,
};

static struct PyModuleDef fastparse_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "collectors.exchanges.okx._fastparse",
    .m_doc = "The compiled fast path for OKX trade frames (see fast.py).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__fastparse(void)
{
    if (PyType_Ready(&TradeParserType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&fastparse_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "TradeParser", (PyObject *)&TradeParserType) < 0 ||
        PyModule_AddIntConstant(module, "MAX_FRAME_LEN", MAX_FRAME_LEN) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
