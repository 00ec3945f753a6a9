/*
 * media-tree-encoder: runs a gst-launch-1.0 style pipeline and, on each
 * "keyframe" line on stdin, asks one element of it (the video encoder) for a
 * key unit. gst-launch-1.0 takes no events from outside; the injection's
 * built-in source needs one when a viewer's PLI or FIR comes up the tree.
 *
 *   media-tree-encoder --keyframe-element NAME PIPELINE-DESCRIPTION...
 *
 * stdin, one command a line: "keyframe" (anything else is reported on stderr
 * and ignored). End of stdin, SIGTERM or SIGINT stop the pipeline and exit 0;
 * a pipeline error exits 1; bad arguments exit 2.
 *
 * The event is GstVideo's upstream force-key-unit event, built from its
 * documented structure ("GstForceKeyUnit", a custom upstream event) with the
 * core library alone, so no gstreamer-video development files are needed. It
 * is sent to the encoder's src pad: GstVideoEncoder takes it there and flags
 * the next frame it encodes as a key frame.
 */
#include <errno.h>
#include <getopt.h>
#include <glib-unix.h>
#include <gst/gst.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PROG "media-tree-encoder"
#define MAX_LINE 256

static GMainLoop *loop;
static GstElement *pipeline;
static GstPad *encoder_src;
static guint requests;
static int exit_code;

static gboolean on_signal(gpointer data) {
  (void)data;
  g_main_loop_quit(loop);
  return G_SOURCE_REMOVE;
}

static gboolean on_bus(GstBus *bus, GstMessage *msg, gpointer data) {
  (void)bus;
  (void)data;
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError *err = NULL;
    gchar *dbg = NULL;
    gst_message_parse_error(msg, &err, &dbg);
    fprintf(stderr, PROG ": error from %s: %s (%s)\n", GST_OBJECT_NAME(msg->src), err->message, dbg ? dbg : "");
    g_clear_error(&err);
    g_free(dbg);
    exit_code = 1;
    g_main_loop_quit(loop);
  } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS) {
    g_main_loop_quit(loop);
  }
  return G_SOURCE_CONTINUE;
}

/* What gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, count) makes. */
static gboolean force_key_unit(void) {
  GstStructure *s = gst_structure_new("GstForceKeyUnit", "running-time", G_TYPE_UINT64, GST_CLOCK_TIME_NONE,
                                      "all-headers", G_TYPE_BOOLEAN, TRUE, "count", G_TYPE_UINT, ++requests, NULL);
  return gst_pad_send_event(encoder_src, gst_event_new_custom(GST_EVENT_CUSTOM_UPSTREAM, s));
}

/* Lines longer than MAX_LINE are refused whole (the rest up to the newline is skipped). */
static char line[MAX_LINE + 1];
static size_t used;
static gboolean overlong;

static void on_line(void) {
  line[used] = '\0';
  if (overlong)
    fprintf(stderr, PROG ": ignoring a command over %d bytes\n", MAX_LINE);
  else if (strcmp(line, "keyframe") == 0) {
    if (!force_key_unit()) fprintf(stderr, PROG ": the encoder did not take the force-key-unit event\n");
  } else if (used > 0)
    fprintf(stderr, PROG ": ignoring unknown command \"%s\"\n", line);
  used = 0;
  overlong = FALSE;
}

static gboolean on_stdin(gint fd, GIOCondition cond, gpointer data) {
  (void)cond;
  (void)data;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return G_SOURCE_CONTINUE;
  if (n <= 0) {
    /* Whoever started us is gone or done with us. */
    g_main_loop_quit(loop);
    return G_SOURCE_REMOVE;
  }
  for (ssize_t i = 0; i < n; i++) {
    if (buf[i] == '\n')
      on_line();
    else if (buf[i] == '\r')
      continue;
    else if (used < MAX_LINE)
      line[used++] = buf[i];
    else
      overlong = TRUE;
  }
  return G_SOURCE_CONTINUE;
}

static int usage(void) {
  fprintf(stderr, "usage: " PROG " --keyframe-element NAME PIPELINE-DESCRIPTION...\n"
                  "  runs the pipeline (gst-launch-1.0 syntax); each \"keyframe\" line on stdin\n"
                  "  asks element NAME (a video encoder) for a key unit\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *element = NULL;
  static const struct option opts[] = {{"keyframe-element", required_argument, NULL, 'k'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  /* "+": stop at the first non-option, the pipeline's first word. */
  while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    if (c == 'k')
      element = optarg;
    else
      return usage();
  }
  if (!element || optind >= argc) return usage();

  gst_init(NULL, NULL);
  GError *err = NULL;
  pipeline = gst_parse_launchv((const gchar **)&argv[optind], &err);
  if (!pipeline || err) {
    fprintf(stderr, PROG ": bad pipeline: %s\n", err ? err->message : "unknown error");
    return 2;
  }
  GstElement *enc = gst_bin_get_by_name(GST_BIN(pipeline), element);
  if (!enc) {
    fprintf(stderr, PROG ": no element named \"%s\" in the pipeline\n", element);
    return 2;
  }
  encoder_src = gst_element_get_static_pad(enc, "src");
  gst_object_unref(enc);
  if (!encoder_src) {
    fprintf(stderr, PROG ": element \"%s\" has no src pad\n", element);
    return 2;
  }

  loop = g_main_loop_new(NULL, FALSE);
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_add_watch(bus, on_bus, NULL);
  gst_object_unref(bus);
  g_unix_signal_add(SIGTERM, on_signal, NULL);
  g_unix_signal_add(SIGINT, on_signal, NULL);
  g_unix_fd_add(0, G_IO_IN | G_IO_HUP | G_IO_ERR, on_stdin, NULL);

  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    fprintf(stderr, PROG ": the pipeline does not start\n");
    return 1;
  }
  g_main_loop_run(loop);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(encoder_src);
  gst_object_unref(pipeline);
  g_main_loop_unref(loop);
  return exit_code;
}
