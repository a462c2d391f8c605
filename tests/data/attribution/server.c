/* A small native "service" for the heaptrack attribution tests: each request allocates a
 * scratch buffer (freed) and a record. `server leak RATE` keeps every record in
 * remember_request (the planted leak); `server clean RATE` keeps the last 256 only. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECORD 1024
#define RING 256

char **kept;     /* global: the compiler cannot drop the stores */
size_t n_kept, cap_kept;
char *ring[RING];
unsigned long served;

void remember_request(unsigned long id) {
    char *r = malloc(RECORD);
    if (!r) abort();
    memset(r, (int)(id & 0xff), RECORD);
    if (n_kept == cap_kept) {
        cap_kept = cap_kept ? cap_kept * 2 : 1024;
        kept = realloc(kept, cap_kept * sizeof *kept);
        if (!kept) abort();
    }
    kept[n_kept++] = r;
}

void rotate_request(unsigned long id) {
    char *r = malloc(RECORD);
    if (!r) abort();
    memset(r, (int)(id & 0xff), RECORD);
    free(ring[id % RING]);
    ring[id % RING] = r;
}

void handle(unsigned long id, int leak) {
    char *scratch = malloc(512);
    if (!scratch) abort();
    memset(scratch, 1, 512);
    free(scratch);
    if (leak)
        remember_request(id);
    else
        rotate_request(id);
    served++;
}

int main(int argc, char **argv) {
    int leak = argc > 1 && strcmp(argv[1], "leak") == 0;
    long rate = argc > 2 ? atol(argv[2]) : 200;
    if (rate < 1) rate = 1;
    struct timespec pause = {0, 1000000000L / rate};
    for (unsigned long id = 0;; id++) {
        handle(id, leak);
        nanosleep(&pause, NULL);
    }
}
