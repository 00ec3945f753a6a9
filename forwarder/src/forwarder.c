/*
 * media-tree-forwarder: forwards RTP from an audio and a video UDP port to a
 * set of destinations, steered over a Unix control socket (see docs/forwarder.md).
 *
 * One GStreamer pipeline per stream type:
 *   fanout: udpsrc ! multiudpsink            every packet to every destination
 *   demux:  udpsrc ! rtpssrcdemux ! multiudpsink (one per SSRC, made on
 *           new-ssrc-pad) whose clients are the destinations naming that SSRC
 *           plus those naming none.
 * The main thread runs a GMainLoop: control clients, signals, bus errors. The
 * only other thread that touches our tables is a streaming thread creating a
 * per-SSRC sink, hence `lock`.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <getopt.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <gst/gst.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/un.h>
#include <unistd.h>

#include "rtp-quality.h"

#define PROG "media-tree-forwarder"
#define MAX_LINE 1024            /* bytes per command line, newline excluded */
#define MAX_OUT (1024 * 1024)    /* unread replies before we drop a client */
#define MAX_CLIENTS 64
#define MAX_DESTS 1024
#define MAX_SSRCS 1024           /* per pipeline: bounds elements an SSRC spray can create */
#define SWEEP_SECONDS 5          /* idle, unwanted SSRC sinks are dropped after this */
#define RCVBUF (4 * 1024 * 1024) /* absorbs bursts (key frames) while a core is busy */
#define QUALITY_IDLE_SECONDS 10  /* a source silent this long leaves STATS (its session ended) */

enum { AUDIO, VIDEO, NTYPES };
static const char *TYPE_NAME[NTYPES] = {"audio", "video"};
/* RTP timestamp rate per stream type, for jitter in seconds: Opus 48 kHz, video 90 kHz. */
static const guint32 CLOCK_RATE[NTYPES] = {48000, 90000};

typedef struct Pipe Pipe;

/* One multiudpsink and the number of clients we gave it (for packetsOut). */
typedef struct {
  Pipe *pipe;
  GstElement *el;
  guint32 ssrc;
  gint clients;        /* atomic */
  guint64 packets;     /* atomic: buffers rendered, for the idle sweep */
  guint64 last_packets;
} Sink;

struct Pipe {
  int type;
  guint16 port;
  GstElement *pipeline, *src, *demux;
  Sink *sink;             /* fanout */
  GHashTable *by_ssrc;    /* demux: GUINT_TO_POINTER(ssrc) -> Sink*, under lock */
  guint64 packets_in, bytes_in, packets_out, bytes_out; /* atomic */
  /* RFC 3550 receive quality per SSRC: the streaming thread writes, STATS reads. */
  GMutex qlock;
  GHashTable *quality; /* GUINT_TO_POINTER(ssrc) -> RtpQuality*, under qlock */
  RtpQuality *last_q;  /* the previous packet's source, under qlock */
};

typedef struct {
  char *id;
  char *host;
  guint16 port[NTYPES];
  gboolean has_ssrc;
  guint32 ssrc[NTYPES];
} Dest;

typedef struct {
  int fd;
  guint in_watch, out_watch;
  char line[MAX_LINE + 1];
  size_t len;
  gboolean overlong;
  GString *out;
} Client;

static struct {
  gboolean demux;
  const char *control, *bind;
  GMainLoop *loop;
  Pipe pipes[NTYPES];
  GMutex lock;          /* dests and by_ssrc */
  GPtrArray *dests;     /* Dest*, in ADD order */
  int listen_fd;
  int nclients;
} G;

/* ---------- sinks and counters ---------- */

static void track_quality(Pipe *p, GstBuffer *b) {
  GstMapInfo map;
  guint32 ssrc, ts;
  guint16 seq;
  if (!gst_buffer_map(b, &map, GST_MAP_READ)) return;
  int rtp = rtpq_parse(map.data, map.size, &ssrc, &seq, &ts);
  gst_buffer_unmap(b, &map);
  if (rtp != 0) return;
  guint64 now = (guint64)g_get_monotonic_time();
  g_mutex_lock(&p->qlock);
  RtpQuality *q = p->last_q;
  if (!q || q->ssrc != ssrc) {
    q = g_hash_table_lookup(p->quality, GUINT_TO_POINTER(ssrc));
    if (!q && g_hash_table_size(p->quality) < MAX_SSRCS) {
      q = g_new(RtpQuality, 1);
      rtpq_init(q, ssrc, CLOCK_RATE[p->type]);
      g_hash_table_insert(p->quality, GUINT_TO_POINTER(ssrc), q);
    }
    p->last_q = q;
  }
  if (q) rtpq_packet(q, seq, ts, now);
  g_mutex_unlock(&p->qlock);
}

static GstPadProbeReturn count_in(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  (void)pad;
  Pipe *p = data;
  GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
  track_quality(p, b);
  /* Counted after the quality update (release, paired with STATS' acquire): a STATS whose
     packetsIn includes a packet also has that packet in its streams. */
  __atomic_add_fetch(&p->bytes_in, gst_buffer_get_size(b), __ATOMIC_RELAXED);
  __atomic_add_fetch(&p->packets_in, 1, __ATOMIC_RELEASE);
  return GST_PAD_PROBE_OK;
}

/* Main thread, every SWEEP_SECONDS: forget the quality of sources gone silent. */
static gboolean sweep_quality(gpointer data) {
  (void)data;
  guint64 cutoff = (guint64)g_get_monotonic_time() - (guint64)QUALITY_IDLE_SECONDS * G_USEC_PER_SEC;
  for (int t = 0; t < NTYPES; t++) {
    Pipe *p = &G.pipes[t];
    g_mutex_lock(&p->qlock);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, p->quality);
    while (g_hash_table_iter_next(&it, &k, &v)) {
      if (((RtpQuality *)v)->last_arrival_us < cutoff) {
        if (p->last_q == v) p->last_q = NULL;
        g_hash_table_iter_remove(&it);
      }
    }
    g_mutex_unlock(&p->qlock);
  }
  return G_SOURCE_CONTINUE;
}

/* multiudpsink sends each buffer once per client (send-duplicates is on). */
static GstPadProbeReturn count_out(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  (void)pad;
  Sink *s = data;
  guint64 n = (guint64)g_atomic_int_get(&s->clients);
  GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
  __atomic_add_fetch(&s->packets, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&s->pipe->packets_out, n, __ATOMIC_RELAXED);
  __atomic_add_fetch(&s->pipe->bytes_out, n * gst_buffer_get_size(b), __ATOMIC_RELAXED);
  return GST_PAD_PROBE_OK;
}

static Sink *sink_new(Pipe *p, guint32 ssrc) {
  Sink *s = g_new0(Sink, 1);
  s->pipe = p;
  s->ssrc = ssrc;
  s->last_packets = G_MAXUINT64; /* never swept before one full interval */
  s->el = gst_element_factory_make("multiudpsink", NULL);
  /* Forward as fast as packets come: no clock sync, no preroll. */
  g_object_set(s->el, "sync", FALSE, "async", FALSE, "send-duplicates", TRUE, NULL);
  GstPad *pad = gst_element_get_static_pad(s->el, "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, count_out, s, NULL);
  gst_object_unref(pad);
  return s;
}

static void sink_client(Sink *s, const Dest *d, gboolean add) {
  int t = s->pipe->type;
  if (add) {
    g_signal_emit_by_name(s->el, "add", d->host, (gint)d->port[t]);
    g_atomic_int_inc(&s->clients);
  } else {
    g_atomic_int_add(&s->clients, -1);
    g_signal_emit_by_name(s->el, "remove", d->host, (gint)d->port[t]);
  }
}

static gboolean wants(const Dest *d, int type, guint32 ssrc) {
  return !d->has_ssrc || d->ssrc[type] == ssrc;
}

/* Streaming thread: a packet with a new SSRC arrived; give it a sink. */
static void on_new_ssrc(GstElement *demux, guint ssrc, GstPad *pad, gpointer data) {
  (void)demux;
  Pipe *p = data;
  Sink *s = sink_new(p, ssrc);
  gst_bin_add(GST_BIN(p->pipeline), s->el);
  gst_element_sync_state_with_parent(s->el);
  g_mutex_lock(&G.lock);
  for (guint i = 0; i < G.dests->len; i++) {
    Dest *d = g_ptr_array_index(G.dests, i);
    if (wants(d, p->type, ssrc)) sink_client(s, d, TRUE);
  }
  g_hash_table_insert(p->by_ssrc, GUINT_TO_POINTER(ssrc), s);
  g_mutex_unlock(&G.lock);
  GstPad *sinkpad = gst_element_get_static_pad(s->el, "sink");
  if (gst_pad_link(pad, sinkpad) != GST_PAD_LINK_OK)
    g_printerr(PROG ": %s: cannot link the sink of SSRC %u\n", TYPE_NAME[p->type], ssrc);
  gst_object_unref(sinkpad);
}

/* Main thread, every SWEEP_SECONDS: drop sinks nobody wants whose SSRC went quiet. */
static gboolean sweep(gpointer data) {
  (void)data;
  for (int t = 0; t < NTYPES && G.demux; t++) {
    Pipe *p = &G.pipes[t];
    GPtrArray *gone = g_ptr_array_new();
    g_mutex_lock(&G.lock);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, p->by_ssrc);
    while (g_hash_table_iter_next(&it, &k, &v)) {
      Sink *s = v;
      guint64 now = __atomic_load_n(&s->packets, __ATOMIC_RELAXED);
      if (g_atomic_int_get(&s->clients) == 0 && now == s->last_packets) {
        g_ptr_array_add(gone, s);
        g_hash_table_iter_remove(&it);
      } else {
        s->last_packets = now;
      }
    }
    g_mutex_unlock(&G.lock);
    /* Outside the lock: rtpssrcdemux holds its own lock while it calls on_new_ssrc. */
    for (guint i = 0; i < gone->len; i++) {
      Sink *s = g_ptr_array_index(gone, i);
      g_signal_emit_by_name(p->demux, "clear-ssrc", s->ssrc);
      gst_element_set_state(s->el, GST_STATE_NULL);
      gst_bin_remove(GST_BIN(p->pipeline), s->el);
      g_free(s);
    }
    g_ptr_array_free(gone, TRUE);
  }
  return G_SOURCE_CONTINUE;
}

/* ---------- waiting for packets in flight ---------- */

typedef struct {
  GMutex m;
  GCond c;
  gboolean done;
  gint refs;
} Barrier;

static void barrier_unref(gpointer data) {
  Barrier *b = data;
  if (g_atomic_int_dec_and_test(&b->refs)) {
    g_mutex_clear(&b->m);
    g_cond_clear(&b->c);
    g_free(b);
  }
}

static GstPadProbeReturn on_idle(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  (void)pad, (void)info;
  Barrier *b = data;
  g_mutex_lock(&b->m);
  b->done = TRUE;
  g_cond_signal(&b->c);
  g_mutex_unlock(&b->m);
  return GST_PAD_PROBE_REMOVE;
}

/*
 * multiudpsink may send a buffer to a client list copied before our `remove`.
 * An IDLE probe on udpsrc's pad fires once no push is in progress, so after
 * this returns no packet can reach a removed destination.
 */
static void wait_idle(Pipe *p) {
  Barrier *b = g_new0(Barrier, 1);
  g_mutex_init(&b->m);
  g_cond_init(&b->c);
  b->refs = 2;
  GstPad *pad = gst_element_get_static_pad(p->src, "src");
  gulong id = gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_IDLE, on_idle, b, barrier_unref);
  gint64 deadline = g_get_monotonic_time() + G_TIME_SPAN_SECOND;
  g_mutex_lock(&b->m);
  while (!b->done)
    if (!g_cond_wait_until(&b->c, &b->m, deadline)) break;
  gboolean done = b->done;
  g_mutex_unlock(&b->m);
  if (!done && id) gst_pad_remove_probe(pad, id);
  gst_object_unref(pad);
  barrier_unref(b);
}

/* ---------- destinations ---------- */

static Dest *find_dest(const char *id, guint *index) {
  for (guint i = 0; i < G.dests->len; i++) {
    Dest *d = g_ptr_array_index(G.dests, i);
    if (strcmp(d->id, id) == 0) {
      if (index) *index = i;
      return d;
    }
  }
  return NULL;
}

/* Adds or removes one destination's clients on every sink that carries it. Caller holds lock. */
static void apply_dest(Dest *d, gboolean add) {
  for (int t = 0; t < NTYPES; t++) {
    Pipe *p = &G.pipes[t];
    if (!G.demux) {
      sink_client(p->sink, d, add);
      continue;
    }
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, p->by_ssrc);
    while (g_hash_table_iter_next(&it, &k, &v))
      if (wants(d, t, ((Sink *)v)->ssrc)) sink_client(v, d, add);
  }
}

static void dest_free(Dest *d) {
  g_free(d->id);
  g_free(d->host);
  g_free(d);
}

/* ---------- the control protocol ---------- */

static gboolean valid_id(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 128) return FALSE;
  for (; *s; s++)
    if (!g_ascii_isalnum(*s) && !strchr("._:-", *s)) return FALSE;
  return TRUE;
}

/* Plain decimal, no sign, no leading zeros beyond "0", within [min, max]. */
static gboolean parse_uint(const char *s, guint64 min, guint64 max, guint64 *out) {
  size_t n = strlen(s);
  if (n < 1 || n > 10 || (n > 1 && s[0] == '0')) return FALSE;
  guint64 v = 0;
  for (; *s; s++) {
    if (!g_ascii_isdigit(*s)) return FALSE;
    v = v * 10 + (guint64)(*s - '0');
  }
  if (v < min || v > max) return FALSE;
  *out = v;
  return TRUE;
}

/* An IPv4 or IPv6 literal, normalised; names are the caller's to resolve. */
static char *parse_host(const char *s) {
  if (strlen(s) > 64) return NULL;
  GInetAddress *a = g_inet_address_new_from_string(s);
  if (!a) return NULL;
  char *out = NULL;
  if (!g_inet_address_get_is_any(a)) out = g_inet_address_to_string(a);
  g_object_unref(a);
  return out;
}

static char *cmd_add(char **tok, int n) {
  if (n != 5 && n != 7)
    return g_strdup("ERR ADD takes <id> <host> <audioPort> <videoPort> [audioSsrc videoSsrc]");
  if (!valid_id(tok[1])) return g_strdup("ERR bad id: use 1..128 of A-Z a-z 0-9 . _ : -");
  guint64 port[NTYPES], ssrc[NTYPES] = {0, 0};
  for (int t = 0; t < NTYPES; t++)
    if (!parse_uint(tok[3 + t], 1, 65535, &port[t]))
      return g_strdup_printf("ERR bad %s port: expected 1..65535", TYPE_NAME[t]);
  if (n == 7) {
    if (!G.demux) return g_strdup("ERR SSRCs need --mode demux");
    for (int t = 0; t < NTYPES; t++)
      if (!parse_uint(tok[5 + t], 0, G_MAXUINT32, &ssrc[t]))
        return g_strdup_printf("ERR bad %s SSRC: expected 0..4294967295", TYPE_NAME[t]);
  }
  char *host = parse_host(tok[2]);
  if (!host) return g_strdup("ERR bad host: expected an IPv4 or IPv6 address (not 0.0.0.0 or ::)");
  if (find_dest(tok[1], NULL)) {
    g_free(host);
    return g_strdup("ERR duplicate id");
  }
  if (G.dests->len >= MAX_DESTS) {
    g_free(host);
    return g_strdup_printf("ERR too many destinations (limit %d)", MAX_DESTS);
  }
  Dest *d = g_new0(Dest, 1);
  d->id = g_strdup(tok[1]);
  d->host = host;
  d->has_ssrc = n == 7;
  for (int t = 0; t < NTYPES; t++) {
    d->port[t] = (guint16)port[t];
    d->ssrc[t] = (guint32)ssrc[t];
  }
  g_mutex_lock(&G.lock);
  g_ptr_array_add(G.dests, d);
  apply_dest(d, TRUE);
  g_mutex_unlock(&G.lock);
  return g_strdup_printf("OK added %s", d->id);
}

static char *cmd_remove(char **tok, int n) {
  if (n != 2) return g_strdup("ERR REMOVE takes <id>");
  if (!valid_id(tok[1])) return g_strdup("ERR bad id: use 1..128 of A-Z a-z 0-9 . _ : -");
  guint index;
  g_mutex_lock(&G.lock);
  Dest *d = find_dest(tok[1], &index);
  if (d) {
    apply_dest(d, FALSE);
    g_ptr_array_remove_index(G.dests, index);
  }
  g_mutex_unlock(&G.lock);
  if (!d) return g_strdup("ERR unknown id");
  for (int t = 0; t < NTYPES; t++) wait_idle(&G.pipes[t]);
  char *reply = g_strdup_printf("OK removed %s", d->id);
  dest_free(d);
  return reply;
}

static char *cmd_list(void) {
  GString *s = g_string_new("{\"destinations\":[");
  g_mutex_lock(&G.lock);
  for (guint i = 0; i < G.dests->len; i++) {
    Dest *d = g_ptr_array_index(G.dests, i);
    /* ids and hosts are validated to need no JSON escaping */
    g_string_append_printf(s, "%s{\"id\":\"%s\",\"host\":\"%s\",\"audioPort\":%u,\"videoPort\":%u,", i ? "," : "",
                           d->id, d->host, d->port[AUDIO], d->port[VIDEO]);
    if (d->has_ssrc)
      g_string_append_printf(s, "\"audioSsrc\":%u,\"videoSsrc\":%u}", d->ssrc[AUDIO], d->ssrc[VIDEO]);
    else
      g_string_append(s, "\"audioSsrc\":null,\"videoSsrc\":null}");
  }
  g_mutex_unlock(&G.lock);
  g_string_append(s, "]}");
  return g_string_free(s, FALSE);
}

static char *cmd_stats(void) {
  GString *s = g_string_new(NULL);
  g_string_append_printf(s, "{\"mode\":\"%s\"", G.demux ? "demux" : "fanout");
  g_mutex_lock(&G.lock);
  guint ndests = G.dests->len;
  g_mutex_unlock(&G.lock);
  for (int t = 0; t < NTYPES; t++) {
    Pipe *p = &G.pipes[t];
    GstState state = GST_STATE_NULL;
    gst_element_get_state(p->pipeline, &state, NULL, 0);
    /* GstState counts VOID_PENDING as 0; the seed's scale is 0 NULL .. 3 PLAYING */
    int seed_state = state > GST_STATE_NULL ? (int)state - GST_STATE_NULL : 0;
    g_mutex_lock(&G.lock);
    guint ssrcs = p->by_ssrc ? g_hash_table_size(p->by_ssrc) : 0;
    g_mutex_unlock(&G.lock);
    g_string_append_printf(s,
                           ",\"%s\":{\"state\":%d,\"port\":%u,\"packetsIn\":%" G_GUINT64_FORMAT
                           ",\"bytesIn\":%" G_GUINT64_FORMAT ",\"packetsOut\":%" G_GUINT64_FORMAT
                           ",\"bytesOut\":%" G_GUINT64_FORMAT ",\"destinations\":%u,\"ssrcs\":%u}",
                           TYPE_NAME[t], seed_state, p->port, __atomic_load_n(&p->packets_in, __ATOMIC_ACQUIRE),
                           __atomic_load_n(&p->bytes_in, __ATOMIC_RELAXED),
                           __atomic_load_n(&p->packets_out, __ATOMIC_RELAXED),
                           __atomic_load_n(&p->bytes_out, __ATOMIC_RELAXED), ndests, ssrcs);
    s->len--; /* reopen the object for its streams */
    g_string_append(s, ",\"streams\":[");
    g_mutex_lock(&p->qlock);
    GHashTableIter it;
    gpointer k, v;
    gboolean first = TRUE;
    g_hash_table_iter_init(&it, p->quality);
    while (g_hash_table_iter_next(&it, &k, &v)) {
      RtpQuality *q = v;
      if (!q->started) continue;
      g_string_append_printf(s,
                             "%s{\"ssrc\":%u,\"expected\":%" G_GUINT64_FORMAT ",\"received\":%" G_GUINT64_FORMAT
                             ",\"lost\":%" G_GUINT64_FORMAT ",\"outOfOrder\":%" G_GUINT64_FORMAT
                             ",\"duplicates\":%" G_GUINT64_FORMAT ",\"jitter\":%.9f}",
                             first ? "" : ",", q->ssrc, rtpq_expected(q), rtpq_received(q), rtpq_lost(q),
                             q->out_of_order, q->duplicates, rtpq_jitter_seconds(q));
      first = FALSE;
    }
    g_mutex_unlock(&p->qlock);
    g_string_append(s, "]}");
  }
  g_string_append(s, "}");
  return g_string_free(s, FALSE);
}

/* One line in, one reply line out. Nothing changes unless the reply is OK. */
static char *handle_line(char *line, size_t len) {
  if (len && line[len - 1] == '\r') line[--len] = '\0';
  if (!g_utf8_validate(line, (gssize)len, NULL)) return g_strdup("ERR line is not valid UTF-8");
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)line[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) return g_strdup("ERR control character in line");
  }
  char *tok[8];
  int n = 0;
  for (char *save = NULL, *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
    if (n == 8) return g_strdup("ERR too many arguments");
    tok[n++] = t;
  }
  if (n == 0) return g_strdup("ERR empty line");
  if (!strcmp(tok[0], "ADD")) return cmd_add(tok, n);
  if (!strcmp(tok[0], "REMOVE")) return cmd_remove(tok, n);
  if (n != 1 && (!strcmp(tok[0], "LIST") || !strcmp(tok[0], "STATS") || !strcmp(tok[0], "PING")))
    return g_strdup_printf("ERR %s takes no arguments", tok[0]);
  if (!strcmp(tok[0], "LIST")) return cmd_list();
  if (!strcmp(tok[0], "STATS")) return cmd_stats();
  if (!strcmp(tok[0], "PING")) return g_strdup("OK pong");
  return g_strdup("ERR unknown command (ADD, REMOVE, LIST, STATS, PING)");
}

/* ---------- control clients ---------- */

static void client_free(Client *c) {
  if (c->in_watch) g_source_remove(c->in_watch);
  if (c->out_watch) g_source_remove(c->out_watch);
  close(c->fd);
  g_string_free(c->out, TRUE);
  g_free(c);
  G.nclients--;
}

/* Writes what the socket takes; FALSE when the client is gone. */
static gboolean client_flush(Client *c) {
  while (c->out->len) {
    ssize_t w = send(c->fd, c->out->str, c->out->len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) break;
    if (w <= 0) return FALSE;
    g_string_erase(c->out, 0, w);
  }
  return c->out->len <= MAX_OUT;
}

static gboolean on_client_out(gint fd, GIOCondition cond, gpointer data);

static gboolean client_flush_or_wait(Client *c) {
  if (!client_flush(c)) return FALSE;
  if (c->out->len && !c->out_watch) c->out_watch = g_unix_fd_add(c->fd, G_IO_OUT, on_client_out, c);
  return TRUE;
}

static gboolean on_client_out(gint fd, GIOCondition cond, gpointer data) {
  (void)fd, (void)cond;
  Client *c = data;
  if (!client_flush(c)) {
    c->out_watch = 0;
    client_free(c);
    return G_SOURCE_REMOVE;
  }
  if (c->out->len) return G_SOURCE_CONTINUE;
  c->out_watch = 0;
  return G_SOURCE_REMOVE;
}

static gboolean on_client_in(gint fd, GIOCondition cond, gpointer data) {
  (void)cond;
  Client *c = data;
  char buf[4096];
  ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return G_SOURCE_CONTINUE;
  if (n <= 0) { /* gone: an unfinished line is dropped unexecuted */
    c->in_watch = 0;
    client_free(c);
    return G_SOURCE_REMOVE;
  }
  for (ssize_t i = 0; i < n; i++) {
    char ch = buf[i];
    if (ch == '\n') {
      char *reply;
      if (c->overlong) {
        reply = g_strdup_printf("ERR line longer than %d bytes", MAX_LINE);
      } else {
        c->line[c->len] = '\0';
        reply = handle_line(c->line, c->len);
      }
      g_string_append(c->out, reply);
      g_string_append_c(c->out, '\n');
      g_free(reply);
      c->len = 0;
      c->overlong = FALSE;
    } else if (c->len == MAX_LINE) {
      c->overlong = TRUE; /* discard up to the newline, then answer once */
    } else if (!c->overlong) {
      c->line[c->len++] = ch;
    }
  }
  if (!client_flush_or_wait(c)) {
    c->in_watch = 0;
    client_free(c);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

static gboolean on_accept(gint fd, GIOCondition cond, gpointer data) {
  (void)cond, (void)data;
  int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (cfd < 0) return G_SOURCE_CONTINUE;
  if (G.nclients >= MAX_CLIENTS) {
    static const char msg[] = "ERR too many control clients\n";
    if (send(cfd, msg, sizeof msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) { /* closing anyway */ }
    close(cfd);
    return G_SOURCE_CONTINUE;
  }
  Client *c = g_new0(Client, 1);
  c->fd = cfd;
  c->out = g_string_new(NULL);
  c->in_watch = g_unix_fd_add(cfd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_client_in, c);
  G.nclients++;
  return G_SOURCE_CONTINUE;
}

/* ---------- start-up and shutdown ---------- */

static gboolean on_bus(GstBus *bus, GstMessage *msg, gpointer data) {
  (void)bus;
  Pipe *p = data;
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError *err = NULL;
    gst_message_parse_error(msg, &err, NULL);
    g_printerr(PROG ": %s pipeline stopped: %s\n", TYPE_NAME[p->type], err->message);
    g_error_free(err);
    /* Report the truth (state 0) rather than a PLAYING pipeline that moves nothing. */
    gst_element_set_state(p->pipeline, GST_STATE_NULL);
  }
  return G_SOURCE_CONTINUE;
}

static gboolean build_pipe(Pipe *p, int type, guint16 port) {
  p->type = type;
  p->port = port;
  g_mutex_init(&p->qlock);
  p->quality = g_hash_table_new_full(NULL, NULL, NULL, g_free);
  p->pipeline = gst_pipeline_new(TYPE_NAME[type]);
  p->src = gst_element_factory_make("udpsrc", NULL);
  if (!p->src) return FALSE;
  /* reuse=FALSE: with SO_REUSEADDR a second forwarder would bind the same port and steal its packets */
  g_object_set(p->src, "address", G.bind, "port", (gint)port, "buffer-size", RCVBUF, "reuse", FALSE, NULL);
  gst_bin_add(GST_BIN(p->pipeline), p->src);
  if (G.demux) {
    GstCaps *caps = gst_caps_new_empty_simple("application/x-rtp");
    g_object_set(p->src, "caps", caps, NULL);
    gst_caps_unref(caps);
    p->demux = gst_element_factory_make("rtpssrcdemux", NULL);
    if (!p->demux) return FALSE;
    g_object_set(p->demux, "max-streams", (guint)MAX_SSRCS, NULL);
    p->by_ssrc = g_hash_table_new(NULL, NULL);
    g_signal_connect(p->demux, "new-ssrc-pad", G_CALLBACK(on_new_ssrc), p);
    gst_bin_add(GST_BIN(p->pipeline), p->demux);
    if (!gst_element_link(p->src, p->demux)) return FALSE;
  } else {
    p->sink = sink_new(p, 0);
    gst_bin_add(GST_BIN(p->pipeline), p->sink->el);
    if (!gst_element_link(p->src, p->sink->el)) return FALSE;
  }
  GstPad *pad = gst_element_get_static_pad(p->src, "src");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, count_in, p, NULL);
  gst_object_unref(pad);
  return TRUE;
}

static gboolean start_pipe(Pipe *p) {
  if (gst_element_set_state(p->pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE) {
    GstBus *bus = gst_element_get_bus(p->pipeline);
    gst_bus_add_watch(bus, on_bus, p);
    gst_object_unref(bus);
    return TRUE;
  }
  GstBus *bus = gst_element_get_bus(p->pipeline);
  GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  GError *err = NULL;
  if (m) gst_message_parse_error(m, &err, NULL);
  g_printerr(PROG ": cannot listen for %s on %s:%u: %s\n", TYPE_NAME[p->type], G.bind, p->port,
             err ? err->message : "the pipeline did not start");
  if (err) g_error_free(err);
  if (m) gst_message_unref(m);
  gst_object_unref(bus);
  return FALSE;
}

static int open_control(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) {
    g_printerr(PROG ": control socket path is too long (at most %zu bytes)\n", sizeof sa.sun_path - 1);
    return -1;
  }
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      g_printerr(PROG ": %s exists and is not a socket; refusing to replace it\n", path);
      close(fd);
      return -1;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    gboolean live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (probe >= 0) close(probe);
    if (live) {
      g_printerr(PROG ": another process already serves %s\n", path);
      close(fd);
      return -1;
    }
    unlink(path); /* stale, left by a process that died */
  }
  mode_t old = umask(0077); /* only our user may steer the forwarder */
  int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 32) == 0;
  umask(old);
  if (!ok) {
    g_printerr(PROG ": cannot listen on %s: %s\n", path, g_strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

static gboolean on_signal(gpointer data) {
  (void)data;
  g_main_loop_quit(G.loop);
  return G_SOURCE_REMOVE;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: " PROG " --control PATH --audio-port N --video-port N [--mode fanout|demux] [--bind ADDR] [--die-with-parent]\n"
          "\n"
          "Forwards RTP received on two UDP ports to the destinations added over a\n"
          "Unix control socket (commands: ADD, REMOVE, LIST, STATS, PING).\n"
          "\n"
          "  --control PATH    Unix socket for the line protocol (created mode 0600)\n"
          "  --audio-port N    UDP port for audio RTP (1..65535)\n"
          "  --video-port N    UDP port for video RTP (1..65535)\n"
          "  --mode MODE       fanout: every packet to every destination (relay, default)\n"
          "                    demux: a destination may name SSRCs and gets only those (egress)\n"
          "  --bind ADDR       address to receive on (default 127.0.0.1)\n"
          "  --die-with-parent exit (as on SIGTERM) when the process that started us dies,\n"
          "                    so a SIGKILLed node app leaves no forwarder holding its ports\n"
          "  --help            this text\n");
}

static int bad_usage(const char *what) {
  fprintf(stderr, PROG ": %s\n", what);
  usage(stderr);
  return 2;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"control", required_argument, NULL, 'c'}, {"audio-port", required_argument, NULL, 'a'},
      {"video-port", required_argument, NULL, 'v'}, {"mode", required_argument, NULL, 'm'},
      {"bind", required_argument, NULL, 'b'},      {"help", no_argument, NULL, 'h'},
      {"die-with-parent", no_argument, NULL, 'p'},
      {NULL, 0, NULL, 0}};
  guint64 port[NTYPES] = {0, 0};
  G.bind = "127.0.0.1";
  opterr = 0;
  for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
    switch (o) {
    case 'c': G.control = optarg; break;
    case 'a':
    case 'v':
      if (!parse_uint(optarg, 1, 65535, &port[o == 'a' ? AUDIO : VIDEO]))
        return bad_usage(o == 'a' ? "--audio-port expects 1..65535" : "--video-port expects 1..65535");
      break;
    case 'm':
      if (strcmp(optarg, "fanout") && strcmp(optarg, "demux")) return bad_usage("--mode expects fanout or demux");
      G.demux = !strcmp(optarg, "demux");
      break;
    case 'b': {
      GInetAddress *a = g_inet_address_new_from_string(optarg);
      if (!a) return bad_usage("--bind expects an IPv4 or IPv6 address");
      g_object_unref(a);
      G.bind = optarg;
      break;
    }
    case 'h': usage(stdout); return 0;
    case 'p':
      /* Linux delivers SIGTERM when our parent exits; if it is already gone we were reparented. */
      if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() == 1) return 1;
      break;
    default: {
      char *msg = g_strdup_printf("unknown or incomplete option %s", argv[optind - 1]);
      return bad_usage(msg);
    }
    }
  }
  if (optind < argc) return bad_usage("unexpected argument");
  if (!G.control || !*G.control) return bad_usage("--control is required");
  if (!port[AUDIO] || !port[VIDEO]) return bad_usage("--audio-port and --video-port are required");
  if (port[AUDIO] == port[VIDEO]) return bad_usage("--audio-port and --video-port must differ");

  signal(SIGPIPE, SIG_IGN); /* a vanished reader is an error return, not our death */
  gst_init(NULL, NULL);
  g_mutex_init(&G.lock);
  G.dests = g_ptr_array_new();
  for (int t = 0; t < NTYPES; t++) {
    if (!build_pipe(&G.pipes[t], t, (guint16)port[t])) {
      g_printerr(PROG ": cannot build the %s pipeline: are gstreamer1.0-plugins-good installed?\n", TYPE_NAME[t]);
      return 1;
    }
  }
  for (int t = 0; t < NTYPES; t++)
    if (!start_pipe(&G.pipes[t])) {
      for (int u = 0; u < NTYPES; u++) gst_element_set_state(G.pipes[u].pipeline, GST_STATE_NULL);
      return 1;
    }
  G.listen_fd = open_control(G.control);
  if (G.listen_fd < 0) {
    for (int t = 0; t < NTYPES; t++) gst_element_set_state(G.pipes[t].pipeline, GST_STATE_NULL);
    return 1;
  }

  G.loop = g_main_loop_new(NULL, FALSE);
  g_unix_fd_add(G.listen_fd, G_IO_IN, on_accept, NULL);
  g_unix_signal_add(SIGTERM, on_signal, NULL);
  g_unix_signal_add(SIGINT, on_signal, NULL);
  if (G.demux) g_timeout_add_seconds(SWEEP_SECONDS, sweep, NULL);
  g_timeout_add_seconds(SWEEP_SECONDS, sweep_quality, NULL);
  printf(PROG ": ready, %s mode, audio %s:%u, video %s:%u, control %s\n", G.demux ? "demux" : "fanout", G.bind,
         (unsigned)port[AUDIO], G.bind, (unsigned)port[VIDEO], G.control);
  fflush(stdout);
  g_main_loop_run(G.loop);

  /* SIGTERM/SIGINT: stop taking commands, then stop the media. */
  close(G.listen_fd);
  unlink(G.control);
  for (int t = 0; t < NTYPES; t++) {
    gst_element_set_state(G.pipes[t].pipeline, GST_STATE_NULL);
    gst_object_unref(G.pipes[t].pipeline);
  }
  printf(PROG ": stopped\n");
  return 0;
}
