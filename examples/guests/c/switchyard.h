// The canonical ABI of wit/switchyard.wit (world `guest`) for C on wasm32, written by hand.
//
// There is no wit-bindgen for C on this machine (see examples/guests/README.md), so the
// layouts below are the canonical ABI's, checked by _Static_asserts, and the imports are
// declared under their canonical names. `switchyard component new` embeds the world when it
// turns the core module into a component.
//
// Memory: the host allocates what it hands the guest (an export's arguments, an import's
// returned lists) with `cabi_realloc`, defined here on libc's realloc; the guest owns those
// allocations and frees them (sy_free_bytes, sy_free_envelope_fields). An allocation of
// zero bytes takes no memory: it is the address `align`, never passed to free, as wit-bindgen
// does. What an export returns is freed by its post-return function.

#ifndef SWITCHYARD_H
#define SWITCHYARD_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    uint8_t *ptr;
    size_t len;
} sy_bytes;  // string or list<u8>

typedef struct {
    uint8_t is_some;
    sy_bytes value;
} sy_option_bytes;

// enum message-type
enum { SY_FIRE_AND_FORGET = 0, SY_REQUEST = 1, SY_RESPONSE = 2, SY_PUBLISH = 3 };

// record envelope, 80 bytes.
typedef struct {
    uint8_t message_type;
    sy_bytes from;
    sy_bytes to;
    sy_option_bytes topic;
    sy_bytes payload;
    uint64_t codec;
    sy_bytes message_id;
    sy_option_bytes correlation_id;
    int64_t timestamp_ms;
} sy_envelope;

_Static_assert(offsetof(sy_envelope, topic) == 20, "envelope.topic");
_Static_assert(offsetof(sy_envelope, payload) == 32, "envelope.payload");
_Static_assert(offsetof(sy_envelope, codec) == 40, "envelope.codec");
_Static_assert(offsetof(sy_envelope, correlation_id) == 56, "envelope.correlation-id");
_Static_assert(offsetof(sy_envelope, timestamp_ms) == 72, "envelope.timestamp-ms");
_Static_assert(sizeof(sy_envelope) == 80, "envelope size");

// enum error-code
enum {
    SY_NO_SUCH_COMPONENT = 0,
    SY_MAILBOX_FULL,
    SY_CLOSED,
    SY_TOO_LARGE,
    SY_INVALID_ARGUMENT,
    SY_PERMISSION_DENIED,
    SY_QUOTA_EXCEEDED,
    SY_STORAGE,
    SY_TIMEOUT,
    SY_HANDLER_FAILED,
    SY_INTERNAL,
};

// record error
typedef struct {
    uint8_t code;
    sy_bytes message;
} sy_error;

// result<_, error>
typedef struct {
    uint8_t is_err;
    sy_error err;
} sy_unit_result;

// result<option<list<u8>>, error>
typedef struct {
    uint8_t is_err;
    union {
        sy_option_bytes ok;
        sy_error err;
    } val;
} sy_option_bytes_result;

// The arguments of handler.handle-callback (more than 16 flat values: passed in memory).
typedef struct {
    sy_bytes request_id;
    struct {
        uint8_t is_err;
        union {
            sy_envelope ok;
            sy_error err;
        } val;
    } outcome;
} sy_callback_args;

_Static_assert(offsetof(sy_unit_result, err) == 4, "result<_, error>");
_Static_assert(offsetof(sy_option_bytes_result, val) == 4, "result<option<list<u8>>, error>");
_Static_assert(sizeof(sy_option_bytes_result) == 16, "result<option<list<u8>>, error> size");
_Static_assert(offsetof(sy_callback_args, outcome.val) == 16, "handle-callback outcome");

// enum level
enum { SY_TRACE = 0, SY_DEBUG, SY_INFO, SY_WARN, SY_ERROR };

// ---- imports ----

#define SY_IMPORT(iface, name) __attribute__((import_module("switchyard:component/" iface "@0.1.0"), import_name(name)))

SY_IMPORT("messaging", "send-message")
extern void sy_send_message(const char *to, size_t to_len, const uint8_t *payload, size_t payload_len, uint64_t codec,
                            sy_unit_result *ret);

SY_IMPORT("storage", "get")
extern void sy_storage_get(const uint8_t *key, size_t key_len, sy_option_bytes_result *ret);

SY_IMPORT("storage", "set")
extern void sy_storage_set(const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len,
                           sy_unit_result *ret);

SY_IMPORT("logging", "log")
extern void sy_log(uint32_t level, const char *message, size_t message_len);

// ---- exports ----

#define SY_EXPORT(name) __attribute__((export_name(name)))
#define SY_HANDLER(name) SY_EXPORT("switchyard:component/handler@0.1.0#" name)
#define SY_HANDLER_POST(name) SY_EXPORT("cabi_post_switchyard:component/handler@0.1.0#" name)

// The canonical ABI's allocator (switchyard.c). The host calls it to place arguments and
// returned lists in the guest's memory.
SY_EXPORT("cabi_realloc") void *cabi_realloc(void *ptr, size_t old_size, size_t align, size_t new_size);

// Frees a string or list the host allocated (nothing for an empty one).
static inline void sy_free_bytes(sy_bytes b) {
    if (b.len) free(b.ptr);
}

// Frees what the host allocated for an envelope it handed over: its strings and lists (the
// envelope itself, when the host passed it in memory, is freed by the caller).
static inline void sy_free_envelope_fields(sy_envelope *env) {
    sy_free_bytes(env->from);
    sy_free_bytes(env->to);
    if (env->topic.is_some) sy_free_bytes(env->topic.value);
    sy_free_bytes(env->payload);
    sy_free_bytes(env->message_id);
    if (env->correlation_id.is_some) sy_free_bytes(env->correlation_id.value);
}

// Frees the arguments of handle-callback, which the host allocated in one block.
static inline void sy_free_callback_args(sy_callback_args *args) {
    sy_free_bytes(args->request_id);
    if (args->outcome.is_err) {
        sy_free_bytes(args->outcome.val.err.message);
    } else {
        sy_free_envelope_fields(&args->outcome.val.ok);
    }
    free(args);
}

#endif
