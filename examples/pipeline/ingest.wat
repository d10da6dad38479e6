;; ingest: the pipeline's entry. Accepts records (any non-empty payload) and forwards each to
;; "transform"; an empty record is refused with a handler error (so it is dead-lettered as
;; handler_failed). A request gets the reply "accepted" once the record is forwarded.
;;
;; A core module written by hand against the canonical ABI of wit/switchyard.wit; turn it into
;; a component with `switchyard component new ingest.wat -o ingest.wasm`.
;; Memory: return area at 16, import return area at 240, constants below 240, heap from 4096.
(module
  (import "switchyard:component/messaging@0.1.0" "send-message"
    (func $send (param i32 i32 i32 i32 i64 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 64) "empty record")
  (data (i32.const 96) "transform")
  (data (i32.const 112) "accepted")

  ;; Bump allocator; the post-return functions reset the heap after every call.
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ret i32)
    (local.set $ret
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.xor (i32.sub (local.get $align) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $ret) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq (memory.grow (i32.add (i32.div_u (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
                                                     (i32.const 65536)) (i32.const 1)))
                    (i32.const -1))
          (then unreachable))))
    (if (local.get $old_size) (then (memory.copy (local.get $ret) (local.get $old) (local.get $old_size))))
    (local.get $ret))
  (func (export "cabi_post_switchyard:component/handler@0.1.0#handle-message") (param i32)
    (global.set $heap (i32.const 4096)))
  (func (export "cabi_post_switchyard:component/handler@0.1.0#handle-callback") (param i32)
    (global.set $heap (i32.const 4096)))

  ;; result<option<list<u8>>, error> at 16: err(code, message), copied from a result<_, error>.
  (func $err_from (param $area i32) (result i32)
    (i32.store8 (i32.const 16) (i32.const 1))
    (i32.store8 (i32.const 20) (i32.load8_u (i32.add (local.get $area) (i32.const 4))))
    (i32.store (i32.const 24) (i32.load (i32.add (local.get $area) (i32.const 8))))
    (i32.store (i32.const 28) (i32.load (i32.add (local.get $area) (i32.const 12))))
    (i32.const 16))

  ;; handle-message(envelope*) -> result<option<list<u8>>, error>*
  ;; envelope: message-type u8 @0, payload @32/36 (see tests/wasm_guests/mod.rs for the layout).
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (if (i32.eqz (i32.load (i32.add (local.get $env) (i32.const 36))))
      (then
        ;; err(handler-failed = 9, "empty record")
        (i32.store8 (i32.const 16) (i32.const 1))
        (i32.store8 (i32.const 20) (i32.const 9))
        (i32.store (i32.const 24) (i32.const 64))
        (i32.store (i32.const 28) (i32.const 12))
        (return (i32.const 16))))
    (call $send (i32.const 96) (i32.const 9)
      (i32.load (i32.add (local.get $env) (i32.const 32))) (i32.load (i32.add (local.get $env) (i32.const 36)))
      (i64.load (i32.add (local.get $env) (i32.const 40))) (i32.const 240))
    (if (i32.load8_u (i32.const 240)) (then (return (call $err_from (i32.const 240)))))
    (i32.store8 (i32.const 16) (i32.const 0))
    (if (i32.eq (i32.load8_u (local.get $env)) (i32.const 1))
      (then
        ;; a request: ok(some("accepted"))
        (i32.store8 (i32.const 20) (i32.const 1))
        (i32.store (i32.const 24) (i32.const 112))
        (i32.store (i32.const 28) (i32.const 8)))
      (else (i32.store8 (i32.const 20) (i32.const 0))))
    (i32.const 16))

  ;; ingest makes no requests: every callback is acknowledged.
  (func (export "switchyard:component/handler@0.1.0#handle-callback") (param i32) (result i32)
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.const 16))
)
