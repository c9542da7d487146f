/* demo/demo.c - demo origins for `gslbd --demo`: one libevent HTTP server per region on
 * 127.0.0.1, answering "<region>\n" to everything, so a curl through the proxy shows where it
 * was routed. Not used outside the demo. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "demo/demo.h"

struct demo_region {
    const char *name, *display_name;
    double lat, lon;
};

static const struct demo_region regions[] = {
    {"eu-west", "Europe (Dublin)", 53.3498, -6.2603},
    {"us-east", "US East (Ashburn)", 39.0438, -77.4874},
    {"ap-southeast", "Asia Pacific (Singapore)", 1.3521, 103.8198},
};
#define N_REGIONS (sizeof(regions) / sizeof(regions[0]))

struct demo {
    struct event_base *base;
    struct evhttp *http[N_REGIONS];
    int ports[N_REGIONS];
    pthread_t thread;
    struct event *stop;
    int stop_fds[2];
    char topology[2048];
};

static void answer_cb(struct evhttp_request *req, void *arg)
{
    const struct demo_region *region = arg;
    struct evbuffer *body = evbuffer_new();
    evbuffer_add_printf(body, "%s\n", region->name);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    evhttp_send_reply(req, 200, "OK", body);
    evbuffer_free(body);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct demo *d = arg;
    (void)fd;
    (void)what;
    event_base_loopbreak(d->base);
}

static void *demo_main(void *arg)
{
    struct demo *d = arg;
    event_base_dispatch(d->base);
    return NULL;
}

struct demo *demo_start(char *err, size_t errlen)
{
    struct demo *d = xcalloc(1, sizeof(*d));
    d->base = event_base_new();
    /* demo_stop() wakes the loop through a pipe, so libevent needs no locking. */
    if (pipe2(d->stop_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "demo: pipe: %s", strerror(errno));
        event_base_free(d->base);
        free(d);
        return NULL;
    }
    d->stop = event_new(d->base, d->stop_fds[0], EV_READ, stop_cb, d);
    event_add(d->stop, NULL);
    size_t off = (size_t)snprintf(d->topology, sizeof(d->topology), "{\"regions\": [");
    for (size_t i = 0; i < N_REGIONS; i++) {
        d->http[i] = evhttp_new(d->base);
        evhttp_set_gencb(d->http[i], answer_cb, (void *)(uintptr_t)&regions[i]);
        struct evhttp_bound_socket *sock =
            evhttp_bind_socket_with_handle(d->http[i], "127.0.0.1", 0);
        if (sock == NULL) {
            snprintf(err, errlen, "demo: cannot bind an origin on 127.0.0.1");
            demo_stop(d);
            return NULL;
        }
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &len);
        d->ports[i] = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        off += (size_t)snprintf(d->topology + off, sizeof(d->topology) - off,
                                "%s{\"name\": \"%s\", \"display_name\": \"%s\", \"lat\": %.4f, "
                                "\"lon\": %.4f, \"origins\": [{\"address\": \"127.0.0.1:%d\"}]}",
                                i ? ", " : "", regions[i].name, regions[i].display_name,
                                regions[i].lat, regions[i].lon, d->ports[i]);
    }
    snprintf(d->topology + off, sizeof(d->topology) - off, "]}");
    if (pthread_create(&d->thread, NULL, demo_main, d) != 0) {
        snprintf(err, errlen, "demo: cannot start the origin thread");
        d->thread = 0;
        demo_stop(d);
        return NULL;
    }
    return d;
}

void demo_stop(struct demo *d)
{
    if (d == NULL)
        return;
    if (d->thread) {
        (void)!write(d->stop_fds[1], "x", 1);
        pthread_join(d->thread, NULL);
    }
    for (size_t i = 0; i < N_REGIONS; i++) {
        if (d->http[i])
            evhttp_free(d->http[i]);
    }
    if (d->stop) {
        event_free(d->stop);
        close(d->stop_fds[0]);
        close(d->stop_fds[1]);
    }
    event_base_free(d->base);
    free(d);
}

const char *demo_topology(const struct demo *d)
{
    return d->topology;
}
