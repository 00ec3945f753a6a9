// The player page's WHEP client (draft-ietf-wish-whep), plain browser JavaScript:
// a receive-only VP8 + Opus offer, POSTed once ICE gathering is done to the
// tree's entry point, which redirects (307) to an egress node; the answer comes
// from there, and the viewer's resource (Location) is DELETEd when the page goes.
// Live getStats figures are shown and kept in `window.canopyPlayer` for tests.

(() => {
  const session = document.body.dataset.session;
  const $ = (id) => document.getElementById(id);
  const player = { state: 'starting', egress: null, resource: null, stats: null, error: null };
  window.canopyPlayer = player;

  const setState = (s, error) => {
    player.state = s;
    player.error = error ? String(error) : null;
    $('state').textContent = error ? `${s}: ${error}` : s;
  };

  // Only the codecs the tree carries, so the egress node never has to choose.
  function only(transceiver, kind, mime) {
    const caps = RTCRtpReceiver.getCapabilities(kind);
    const codecs = caps ? caps.codecs.filter((c) => c.mimeType.toLowerCase() === mime) : [];
    if (codecs.length > 0 && transceiver.setCodecPreferences) transceiver.setCodecPreferences(codecs);
  }

  // WHEP sends one offer with every candidate: wait for gathering to end (bounded).
  function gathered(pc, ms) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(t);
          resolve();
        }
      });
    });
  }

  async function readStats(pc) {
    const s = {
      framesDecoded: 0,
      keyFramesDecoded: 0,
      fps: 0,
      videoPackets: 0,
      videoLost: 0,
      audioPackets: 0,
      audioLost: 0,
    };
    (await pc.getStats()).forEach((r) => {
      if (r.type !== 'inbound-rtp') return;
      if (r.kind === 'video') {
        s.framesDecoded = r.framesDecoded || 0;
        s.keyFramesDecoded = r.keyFramesDecoded || 0;
        s.fps = r.framesPerSecond || 0;
        s.videoPackets = r.packetsReceived || 0;
        s.videoLost = r.packetsLost || 0;
      } else if (r.kind === 'audio') {
        s.audioPackets = r.packetsReceived || 0;
        s.audioLost = r.packetsLost || 0;
      }
    });
    player.stats = s;
    $('framesDecoded').textContent = s.framesDecoded;
    $('keyFramesDecoded').textContent = s.keyFramesDecoded;
    $('fps').textContent = s.fps;
    $('videoPackets').textContent = `${s.videoPackets} / ${s.videoLost}`;
    $('audioPackets').textContent = `${s.audioPackets} / ${s.audioLost}`;
  }

  async function watch() {
    const pc = new RTCPeerConnection();
    only(pc.addTransceiver('video', { direction: 'recvonly' }), 'video', 'video/vp8');
    only(pc.addTransceiver('audio', { direction: 'recvonly' }), 'audio', 'audio/opus');
    const stream = new MediaStream();
    pc.addEventListener('track', (e) => {
      stream.addTrack(e.track);
      $('video').srcObject = stream;
    });
    pc.addEventListener('connectionstatechange', () => setState(pc.connectionState));
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 3000);
    setState('offering');
    // fetch follows the entry point's 307 to the egress node, offer included.
    const r = await fetch(`/whep/${encodeURIComponent(session)}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: pc.localDescription.sdp,
    });
    if (r.status !== 201) {
      const retry = Number(r.headers.get('Retry-After'));
      const why = `${r.status} ${(await r.text()).slice(0, 200)}`;
      pc.close();
      // No room yet (or the session not served yet): try again when told, as a WHEP client does.
      if (r.status === 503 && retry > 0) {
        setState(`waiting ${retry} s`, why);
        setTimeout(() => watch().catch((err) => setState('failed', err?.message ?? err)), retry * 1000);
        return;
      }
      throw new Error(why);
    }
    player.egress = new URL(r.url).origin;
    $('egress').textContent = player.egress;
    const location = r.headers.get('Location');
    if (location) player.resource = new URL(location, r.url).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    addEventListener('pagehide', () => {
      if (player.resource) fetch(player.resource, { method: 'DELETE', keepalive: true }).catch(() => {});
      pc.close();
    });
    setInterval(() => readStats(pc).catch(() => {}), 1000);
  }

  watch().catch((err) => setState('failed', err?.message ?? err));
})();
