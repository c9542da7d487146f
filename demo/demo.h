/* demo/demo.h - the embedded demo: small origin servers on loopback, one per demo region, each
 * answering every request with its region's name, and the topology that points at them. */
#ifndef DEMO_DEMO_H
#define DEMO_DEMO_H

#include <stddef.h>

struct demo; /* opaque; owned by the caller of demo_start() */

/* Starts the demo origins on 127.0.0.1 (ports chosen by the kernel) in a thread of their own.
 * Returns NULL with the reason in <err>. */
struct demo *demo_start(char *err, size_t errlen);
void demo_stop(struct demo *demo); /* accepts NULL */

/* The demo topology (three regions: eu-west, us-east, ap-southeast) as import JSON, pointing at
 * the running origins. Borrowed until demo_stop(). */
const char *demo_topology(const struct demo *demo);

#endif
