// transform, written in C: the same component as examples/pipeline/transform.wat.
//
// Upper-cases each record's ASCII letters and forwards it to "store". A record that is exactly
// "poison" is logged (logging.log, level error) and then aborts the instance (__builtin_trap,
// the `unreachable` a C abort becomes): the record is dead-lettered and the supervisor
// restarts transform. A request gets the transformed record as its reply.
//
// There is no wit-bindgen for C here: this file implements the canonical ABI of
// wit/switchyard.wit by hand (32-bit layouts, a bump allocator behind cabi_realloc that the
// post-return functions reset, static return areas), with no libc. Build it with
// examples/guests/build.sh, which runs Debian's clang-19 and then `switchyard component new`.

#include <stddef.h>
#include <stdint.h>

// ---- canonical ABI layouts (wasm32) ----

typedef struct {
    const uint8_t *ptr;
    uint32_t len;
} bytes_t;  // string or list<u8>

typedef struct {
    uint8_t is_some;
    bytes_t value;
} option_bytes_t;

// record envelope (see wit/switchyard.wit), 80 bytes.
typedef struct {
    uint8_t message_type;  // 0 fire-and-forget, 1 request, 2 response, 3 publish
    bytes_t from;
    bytes_t to;
    option_bytes_t topic;
    bytes_t payload;
    uint64_t codec;
    bytes_t message_id;
    option_bytes_t correlation_id;
    int64_t timestamp_ms;
} envelope_t;

_Static_assert(offsetof(envelope_t, topic) == 20, "envelope.topic");
_Static_assert(offsetof(envelope_t, payload) == 32, "envelope.payload");
_Static_assert(offsetof(envelope_t, codec) == 40, "envelope.codec");
_Static_assert(offsetof(envelope_t, correlation_id) == 56, "envelope.correlation-id");
_Static_assert(offsetof(envelope_t, timestamp_ms) == 72, "envelope.timestamp-ms");
_Static_assert(sizeof(envelope_t) == 80, "envelope size");

enum { ERROR_HANDLER_FAILED = 9 };
enum { LOG_ERROR = 4 };

typedef struct {
    uint8_t code;
    bytes_t message;
} error_t;

// result<option<list<u8>>, error>
typedef struct {
    uint8_t is_err;
    union {
        option_bytes_t ok;
        error_t err;
    } val;
} handle_result_t;

// result<_, error>
typedef struct {
    uint8_t is_err;
    error_t err;
} unit_result_t;

_Static_assert(offsetof(handle_result_t, val) == 4, "result payload");
_Static_assert(offsetof(unit_result_t, err) == 4, "result error");

// ---- imports ----

__attribute__((import_module("switchyard:component/messaging@0.1.0"), import_name("send-message"))) extern void
send_message(const uint8_t *to, uint32_t to_len, const uint8_t *payload, uint32_t payload_len, uint64_t codec,
             unit_result_t *ret);

__attribute__((import_module("switchyard:component/logging@0.1.0"), import_name("log"))) extern void log_line(
    uint32_t level, const uint8_t *message, uint32_t message_len);

// ---- allocation: a bump heap, reset after every call ----

extern uint8_t __heap_base;
static uintptr_t heap_top;

static void heap_reset(void) { heap_top = (uintptr_t)&__heap_base; }

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *old, size_t old_size, size_t align,
                                                                 size_t new_size) {
    if (heap_top == 0) heap_reset();
    uintptr_t ret = (heap_top + align - 1) & ~(uintptr_t)(align - 1);
    uintptr_t end = ret + new_size;
    size_t have = __builtin_wasm_memory_size(0) * 65536;
    if (end > have && __builtin_wasm_memory_grow(0, (end - have + 65535) / 65536) == (size_t)-1) {
        __builtin_trap();  // out of memory: the host counts it and restarts the instance
    }
    heap_top = end;
    if (old_size) __builtin_memcpy((void *)ret, old, old_size < new_size ? old_size : new_size);
    return (void *)ret;
}

__attribute__((export_name("cabi_post_switchyard:component/handler@0.1.0#handle-message"))) void post_handle_message(
    void *ret) {
    (void)ret;
    heap_reset();
}

__attribute__((export_name("cabi_post_switchyard:component/handler@0.1.0#handle-callback"))) void
post_handle_callback(void *ret) {
    (void)ret;
    heap_reset();
}

// ---- the handler ----

static handle_result_t message_result;
static unit_result_t callback_result;
static unit_result_t send_result;

static const uint8_t STORE[] = "store";
static const uint8_t POISON[] = "poison";
static const uint8_t POISONED[] = "poisoned record: aborting";

static int is_poison(bytes_t p) {
    if (p.len != sizeof(POISON) - 1) return 0;
    for (uint32_t i = 0; i < p.len; i++) {
        if (p.ptr[i] != POISON[i]) return 0;
    }
    return 1;
}

__attribute__((export_name("switchyard:component/handler@0.1.0#handle-message"))) handle_result_t *handle_message(
    const envelope_t *msg) {
    bytes_t in = msg->payload;
    if (is_poison(in)) {
        log_line(LOG_ERROR, POISONED, sizeof(POISONED) - 1);
        __builtin_trap();
    }
    uint8_t *out = cabi_realloc(0, 0, 1, in.len);
    for (uint32_t i = 0; i < in.len; i++) {
        uint8_t b = in.ptr[i];
        out[i] = (b >= 'a' && b <= 'z') ? (uint8_t)(b - 32) : b;
    }
    send_message(STORE, sizeof(STORE) - 1, out, in.len, msg->codec, &send_result);
    if (send_result.is_err) {
        // Pass the host's error on: the message is dead-lettered with it.
        message_result.is_err = 1;
        message_result.val.err = send_result.err;
        return &message_result;
    }
    message_result.is_err = 0;
    message_result.val.ok.is_some = msg->message_type == 1;
    message_result.val.ok.value = (bytes_t){out, in.len};
    return &message_result;
}

// transform makes no requests: every callback is acknowledged.
__attribute__((export_name("switchyard:component/handler@0.1.0#handle-callback"))) unit_result_t *handle_callback(
    const void *args) {
    (void)args;
    callback_result.is_err = 0;
    return &callback_result;
}
