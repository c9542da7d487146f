/* common/sockerr.h - telling a socket call that failed for want of local resources from one that
 * failed because of its peer. */
#ifndef COMMON_SOCKERR_H
#define COMMON_SOCKERR_H

#include <errno.h>
#include <stdbool.h>

/* Whether <err> (an errno) says this machine ran short: descriptors, buffers, memory or local
 * ports. Such a failure says nothing of the peer, which is not to be blamed for it. */
static inline bool sockerr_is_local_shortage(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM ||
           err == EADDRNOTAVAIL;
}

#endif
