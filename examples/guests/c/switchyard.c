// The canonical ABI's allocator for C guests, on libc's realloc (see switchyard.h).

#include "switchyard.h"

void *cabi_realloc(void *ptr, size_t old_size, size_t align, size_t new_size) {
    if (new_size == 0) {
        if (old_size) free(ptr);
        return (void *)align;
    }
    // libc's malloc aligns to 16 bytes, more than any canonical ABI type needs.
    void *p = realloc(old_size ? ptr : NULL, new_size);
    if (!p) abort();  // out of memory: a trap; the host restarts the instance
    return p;
}
