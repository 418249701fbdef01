// The broadcast's listeners, and the storm's sockets, in C: a load generator cheap enough that
// it does not set the pace for any server in the run (issue 16). One process holds many
// WebSocket clients on one epoll loop. Each reads a socket once per readiness, parses the
// server's (unmasked) frames in place and finds the run's client_id with one memmem, as
// loadgen.js's RawListener does, without its per-frame JavaScript.
//
//   listeners --port P [--host 127.0.0.1] --target chatsite|websockets|socketio --room SLUG
//             --prefix PREFIX --count N [--batch 100] [--connect-timeout 30]
//
// It speaks to loadgen.js in lines (stdin: commands, stdout: one JSON object per line):
//   connect                      open N sockets, each upgraded and joined, with --batch of
//                                them in flight: one starts as soon as another is done
//                                → {"type":"ready","connect":{wanted, connected, failures,
//                                   failure_samples, seconds}}
//   sent SEQ SENT_AT_MS MEASURING  message SEQ was sent at SENT_AT_MS (CLOCK_MONOTONIC, the
//                                clock of Node's process.hrtime) → {"type":"complete","seq",
//                                "missing":0} once every socket has it
//   giveup SEQ                   → {"type":"complete","seq","missing":K} if still open
//   finish                       → {"type":"result","latencies":[ms...],"late","duplicates",
//                                   "foreign"}, then it closes every socket and exits
// The rules for a late, early, duplicate or foreign message are listenerProcess()'s.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { CONNECTING, UPGRADING, EIO_OPEN, EIO_CONNECT, JOINING, LIVE, DONE };
enum target { CHATSITE, SOCKETIO };

typedef struct {
    int fd;
    enum state state;
    char *pending; // the start of a frame that has not all arrived
    size_t pending_len, pending_cap;
    long got; // the last seq this socket counted, or -1
    double deadline;
} conn_t;

static enum target target = CHATSITE;
static const char *host = "127.0.0.1", *room = "general", *prefix = "";
static size_t prefix_len;
static int port, count, batch = 100;
static double connect_timeout = 30;
static conn_t *conns;
static int epfd;

// The run, as listenerProcess() keeps it.
static long seq;
static double sent_at;
static int measuring, answered = 1, remaining, all_open;
static int *early, early_len;
static double *latencies;
static size_t latencies_len, latencies_cap;
static long late, duplicates, foreign;

// Opening: the sockets in flight and what failed.
static int next_index, in_flight, connected, failures, opening, in_open_more;
static double opening_started;
static char samples[5][240];
static int samples_len;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what) {
    fprintf(stderr, "[listeners %d] %s: %s\n", getpid(), what, strerror(errno));
    exit(1);
}

static void json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c < 0x20) fprintf(out, "\\u%04x", c);
        else fputc(c, out);
    }
    fputc('"', out);
}

/** One client frame, masked as a client's must be: text (0x1) or pong (0xA), under 64 KiB. */
static void send_frame(conn_t *c, int opcode, const char *data, size_t len) {
    unsigned char frame[8 + 65536];
    size_t head = len < 126 ? 2 : 4;
    if (len > 65535) len = 65535;
    frame[0] = 0x80 | opcode;
    if (len < 126) frame[1] = 0x80 | len;
    else {
        frame[1] = 0x80 | 126;
        frame[2] = len >> 8;
        frame[3] = len & 0xff;
    }
    uint32_t mask = (uint32_t)random();
    memcpy(frame + head, &mask, 4);
    for (size_t i = 0; i < len; i++) frame[head + 4 + i] = data[i] ^ frame[head + (i & 3)];
    size_t total = head + 4 + len;
    ssize_t n = write(c->fd, frame, total);
    if (n != (ssize_t)total)
        fprintf(stderr, "[listeners %d] a frame of %zu bytes was cut to %zd\n", getpid(), total, n);
}

static void send_text(conn_t *c, const char *text) { send_frame(c, 0x1, text, strlen(text)); }

static int contains(const char *s, size_t len, const char *needle) {
    return memmem(s, len, needle, strlen(needle)) != NULL;
}

/** Whether a JSON text has "key" : "value" at any depth (as loadgen.js's /"key"\s*:\s*"v"/). */
static int has_pair(const char *s, size_t len, const char *key, const char *value) {
    char quoted[64];
    int qlen = snprintf(quoted, sizeof quoted, "\"%s\"", key);
    size_t vlen = strlen(value);
    const char *end = s + len, *at = s;
    while ((at = memmem(at, end - at, quoted, qlen))) {
        const char *p = at + qlen;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
        if (p < end && *p == ':') {
            p++;
            while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
            if (end - p >= (long)vlen + 2 && *p == '"' && !memcmp(p + 1, value, vlen) &&
                p[1 + vlen] == '"')
                return 1;
        }
        at += qlen;
    }
    return 0;
}

static void answer(void) {
    answered = 1;
    printf("{\"type\":\"complete\",\"seq\":%ld,\"missing\":%d}\n", seq, remaining);
    fflush(stdout);
}

static void arrived(int index, long s) {
    conn_t *c = &conns[index];
    if (s == seq && !answered) {
        if (c->got == s) {
            duplicates++;
            return;
        }
        c->got = s;
        if (measuring) {
            if (latencies_len == latencies_cap) {
                latencies_cap = latencies_cap ? latencies_cap * 2 : 65536;
                latencies = realloc(latencies, latencies_cap * sizeof *latencies);
                if (!latencies) die("realloc");
            }
            latencies[latencies_len++] = now_ms() - sent_at;
        }
        if (--remaining == 0) answer();
    } else if (s == seq + 1 && early_len < count) {
        early[early_len++] = index;
    } else if (s == seq && c->got == s) {
        duplicates++;
    } else {
        late++;
    }
}

static void open_more(void);

/** A socket leaves the opening, joined or not, and another takes its place. */
static void settled(conn_t *c, const char *failure) {
    if (failure) {
        failures++;
        int seen = 0;
        for (int i = 0; i < samples_len; i++) seen |= !strcmp(samples[i], failure);
        if (!seen && samples_len < 5) snprintf(samples[samples_len++], sizeof samples[0], "%s", failure);
        if (c->fd >= 0) close(c->fd);
        c->fd = -1;
        c->state = DONE;
    } else {
        connected++;
    }
    in_flight--;
    open_more();
}

static void fail(conn_t *c, const char *fmt, ...) {
    char text[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    settled(c, text);
}

static void on_text(conn_t *c, int index, const char *s, size_t len) {
    switch (c->state) {
    case EIO_OPEN: // engine.io's open packet, then the Socket.IO namespace connect
        if (len && s[0] == '0') {
            send_text(c, "40");
            c->state = EIO_CONNECT;
        }
        return;
    case EIO_CONNECT:
        if (len >= 2 && !memcmp(s, "40", 2)) {
            char join[300];
            snprintf(join, sizeof join, "420[\"join\",\"%s\"]", room);
            send_text(c, join);
            c->state = JOINING;
        }
        return;
    case JOINING:
        if (target == SOCKETIO) {
            if (len >= 3 && !memcmp(s, "430", 3)) c->state = LIVE;
        } else if (has_pair(s, len, "ref", "join") && has_pair(s, len, "type", "error")) {
            fail(c, "join refused: %.*s", (int)(len < 200 ? len : 200), s);
            return;
        } else if (has_pair(s, len, "type", "joined")) {
            c->state = LIVE;
        }
        if (c->state == LIVE) settled(c, NULL);
        return;
    case LIVE: {
        const char *at = prefix_len ? memmem(s, len, prefix, prefix_len) : NULL;
        if (at && at + prefix_len < s + len) {
            long n = 0;
            for (const char *p = at + prefix_len; p < s + len && *p >= '0' && *p <= '9'; p++)
                n = n * 10 + (*p - '0');
            if (all_open) arrived(index, n);
            else foreign++; // before the run's sender sent anything: not of this run
        } else if (target == SOCKETIO) {
            if (len == 1 && s[0] == '2') send_text(c, "3"); // engine.io ping
            else if (contains(s, len, "chat message")) foreign++;
        } else if (contains(s, len, "\"type\":\"message\"")) {
            foreign++;
        }
        return;
    }
    default:
        return;
    }
}

/** Parses what arrived; returns how many bytes were whole frames (or the upgrade). */
static size_t consume(conn_t *c, int index, const char *buf, size_t len) {
    size_t pos = 0;
    if (c->state == UPGRADING) {
        const char *end = memmem(buf, len, "\r\n\r\n", 4);
        if (!end) return 0;
        if (len < 12 || memcmp(buf, "HTTP/1.1 101", 12)) {
            const char *eol = memchr(buf, '\r', len);
            fail(c, "handshake refused: %.*s", (int)(eol - buf < 200 ? eol - buf : 200), buf);
            return len;
        }
        pos = end - buf + 4;
        if (target == SOCKETIO) c->state = EIO_OPEN;
        else {
            char join[300];
            snprintf(join, sizeof join, "{\"type\":\"join\",\"room\":\"%s\",\"ref\":\"join\"}", room);
            send_text(c, join);
            c->state = JOINING;
        }
    }
    while (len - pos >= 2 && c->state != DONE) {
        const unsigned char *f = (const unsigned char *)buf + pos;
        int opcode = f[0] & 0x0f;
        uint64_t size = f[1] & 0x7f;
        size_t head = 2;
        if (size == 126) {
            if (len - pos < 4) break;
            size = (f[2] << 8) | f[3];
            head = 4;
        } else if (size == 127) {
            if (len - pos < 10) break;
            size = 0;
            for (int i = 2; i < 10; i++) size = (size << 8) | f[i];
            head = 10;
        }
        if (size > len - pos - head) break;
        const char *payload = buf + pos + head;
        if (opcode == 0x1) on_text(c, index, payload, size);
        else if (opcode == 0x9) send_frame(c, 0xa, payload, size);
        else if (opcode == 0x8) shutdown(c->fd, SHUT_WR);
        pos += head + size;
    }
    return pos;
}

static void on_readable(int index) {
    static char buf[1 << 18];
    conn_t *c = &conns[index];
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        if (c->state == LIVE) {
            close(c->fd);
            c->fd = -1;
            c->state = DONE;
        } else if (c->state != DONE) {
            fail(c, "closed while setting up");
        }
        return;
    }
    const char *data = buf;
    size_t len = n;
    if (c->pending_len) { // a frame's start came before: add this to it
        if (c->pending_len + len > c->pending_cap) {
            c->pending_cap = c->pending_len + len;
            c->pending = realloc(c->pending, c->pending_cap);
            if (!c->pending) die("realloc");
        }
        memcpy(c->pending + c->pending_len, buf, len);
        len += c->pending_len;
        data = c->pending;
    }
    size_t used = consume(c, index, data, len);
    if (c->state == DONE) return;
    size_t rest = len - used;
    if (rest && data == c->pending) memmove(c->pending, c->pending + used, rest);
    else if (rest) {
        if (rest > c->pending_cap) {
            c->pending_cap = rest;
            c->pending = realloc(c->pending, rest);
            if (!c->pending) die("realloc");
        }
        memcpy(c->pending, data + used, rest);
    }
    c->pending_len = rest;
}

static void on_connected(int index) {
    conn_t *c = &conns[index];
    int error = 0;
    socklen_t size = sizeof error;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size);
    if (error) {
        fail(c, "connect: %s", strerror(error));
        return;
    }
    const char *path = target == SOCKETIO ? "/socket.io/?EIO=4&transport=websocket" : "/ws/chat/";
    char request[512], key[25];
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 22; i++) key[i] = b64[random() & 63];
    memcpy(key + 22, "==", 3);
    int len = snprintf(request, sizeof request,
                       "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Key: %s\r\nOrigin: http://%s:%d\r\n\r\n",
                       path, host, port, key, host, port);
    if (write(c->fd, request, len) != len) {
        fail(c, "connect: the upgrade request was not written");
        return;
    }
    c->state = UPGRADING;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = index};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
}

static void report_ready(void) {
    printf("{\"type\":\"ready\",\"connect\":{\"wanted\":%d,\"connected\":%d,\"failures\":%d,"
           "\"failure_samples\":[",
           count, connected, failures);
    for (int i = 0; i < samples_len; i++) {
        if (i) putchar(',');
        json_string(stdout, samples[i]);
    }
    printf("],\"seconds\":%.2f}}\n", (now_ms() - opening_started) / 1e3);
    fflush(stdout);
    fprintf(stderr, "[listeners %d] %d/%d sockets joined in %.1f s\n", getpid(), connected, count,
            (now_ms() - opening_started) / 1e3);
}

/** Starts one socket's connect; the rest of its opening is driven by epoll. */
static void open_one(int i) {
    conn_t *c = &conns[i];
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &addr.sin_addr);
    in_flight++;
    c->deadline = now_ms() + connect_timeout * 1e3;
    c->state = CONNECTING;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) { // out of descriptors: a failure of this socket, not of the run
        fail(c, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = i};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
        fail(c, "connect: %s", strerror(errno));
}

/** Keeps --batch sockets opening, or reports once every socket is open or has failed. */
static void open_more(void) {
    if (in_open_more) return; // a connect that failed at once, inside the loop below
    in_open_more = 1;
    while (opening && in_flight < batch && next_index < count) open_one(next_index++);
    in_open_more = 0;
    if (opening && !in_flight && next_index >= count) {
        opening = 0;
        all_open = 1;
        report_ready();
    }
}

static void check_deadlines(void) {
    double now = now_ms();
    for (int i = 0; i < next_index && opening; i++) {
        conn_t *c = &conns[i];
        if (c->state != LIVE && c->state != DONE && now > c->deadline)
            fail(c, "connect and join timed out after %g s", connect_timeout);
    }
}

static void finish(void) {
    printf("{\"type\":\"result\",\"late\":%ld,\"duplicates\":%ld,\"foreign\":%ld,\"latencies\":[",
           late, duplicates, foreign);
    for (size_t i = 0; i < latencies_len; i++) printf(i ? ",%.3f" : "%.3f", latencies[i]);
    printf("]}\n");
    fflush(stdout);
    for (int i = 0; i < count; i++)
        if (conns[i].fd >= 0) close(conns[i].fd);
    exit(0);
}

static void command(char *line) {
    long s;
    double at;
    int m;
    if (!strcmp(line, "connect")) {
        if (opening || all_open) return;
        opening = 1;
        opening_started = now_ms();
        open_more();
    } else if (sscanf(line, "sent %ld %lf %d", &s, &at, &m) == 3) {
        seq = s;
        sent_at = at;
        measuring = m;
        remaining = connected;
        answered = 0;
        int n = early_len;
        early_len = 0;
        for (int i = 0; i < n; i++) arrived(early[i], seq);
        if (!remaining && !answered) answer();
    } else if (sscanf(line, "giveup %ld", &s) == 1) {
        if (s == seq && !answered) answer();
    } else if (!strcmp(line, "finish")) {
        finish();
    } else {
        fprintf(stderr, "[listeners %d] unknown command: %s\n", getpid(), line);
        exit(2);
    }
}

static void on_stdin(void) {
    static char line[512];
    static size_t used;
    ssize_t n = read(0, line + used, sizeof line - 1 - used);
    if (n == 0) exit(0); // loadgen.js is gone
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        die("read stdin");
    }
    used += n;
    char *start = line, *nl;
    while ((nl = memchr(start, '\n', line + used - start))) {
        *nl = 0;
        command(start);
        start = nl + 1;
    }
    used = line + used - start;
    memmove(line, start, used);
    if (used == sizeof line - 1) {
        fprintf(stderr, "[listeners %d] a command line is too long\n", getpid());
        exit(2);
    }
}

static void usage(void) {
    fprintf(stderr, "usage: listeners --port P [--host H] --target chatsite|websockets|socketio "
                    "--room SLUG --prefix PREFIX --count N [--batch B] [--connect-timeout S]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i], *value = i + 1 < argc ? argv[++i] : NULL;
        if (!value) usage();
        if (!strcmp(name, "--port")) port = atoi(value);
        else if (!strcmp(name, "--host")) host = value;
        else if (!strcmp(name, "--room")) room = value;
        else if (!strcmp(name, "--prefix")) prefix = value;
        else if (!strcmp(name, "--count")) count = atoi(value);
        else if (!strcmp(name, "--batch")) batch = atoi(value);
        else if (!strcmp(name, "--connect-timeout")) connect_timeout = atof(value);
        else if (!strcmp(name, "--target")) {
            if (!strcmp(value, "socketio")) target = SOCKETIO;
            else if (strcmp(value, "chatsite") && strcmp(value, "websockets")) usage();
        } else usage();
    }
    if (port <= 0 || count < 0 || batch < 1 || strlen(room) > 200) usage();
    prefix_len = strlen(prefix);
    srandom(getpid() ^ (unsigned)now_ms());
    struct rlimit files; // a descriptor per socket: as many as this process may have
    if (!getrlimit(RLIMIT_NOFILE, &files) && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    conns = calloc(count ? count : 1, sizeof *conns);
    early = calloc(count ? count : 1, sizeof *early);
    if (!conns || !early) die("calloc");
    for (int i = 0; i < count; i++) {
        conns[i].fd = -1;
        conns[i].got = -1;
    }
    epfd = epoll_create1(0);
    if (epfd < 0) die("epoll_create1");
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) < 0) die("epoll_ctl stdin");
    struct epoll_event events[1024];
    for (;;) {
        int n = epoll_wait(epfd, events, 1024, opening ? 50 : -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            uint32_t index = events[i].data.u32;
            if (index == UINT32_MAX) on_stdin();
            else if (conns[index].state == CONNECTING) on_connected(index);
            else if (conns[index].state != DONE) on_readable(index);
        }
        if (opening) check_deadlines();
    }
}
