import { describe, expect, it } from 'vitest';
import { createdSchema, infoSchema, JanusError, janusErrorOf, parseJanus, pluginData } from './janus-api.ts';

// What Janus 1.1.2 sent in the bench's runs (trimmed), and what it must not be taken for.
const created = {
  janus: 'success',
  session_id: 6438643816024479,
  transaction: 't1',
  sender: 7313554752979612,
  plugindata: {
    plugin: 'janus.plugin.streaming',
    data: {
      streaming: 'created',
      created: 'bench',
      permanent: false,
      stream: {
        id: 1,
        type: 'live',
        host: '198.19.182.1',
        ports: [
          { type: 'audio', mid: 'a', port: 10000 },
          { type: 'video', mid: 'v', port: 10001 },
        ],
      },
    },
  },
};

describe('the Janus API messages the egress bench reads', () => {
  it('reads the ports a create took and the viewers info counts', () => {
    const d = pluginData(parseJanus(created), createdSchema);
    expect(d.stream.ports.map((p) => [p.type, p.port])).toEqual([
      ['audio', 10000],
      ['video', 10001],
    ]);
    const info = parseJanus({
      janus: 'success',
      transaction: 't2',
      plugindata: {
        plugin: 'janus.plugin.streaming',
        data: { streaming: 'info', info: { id: 1, viewers: 3, media: [{ mid: 'a', age_ms: 6 }, { mid: 'v' }] } },
      },
    });
    expect(pluginData(info, infoSchema).info.viewers).toBe(3);
  });

  it('keeps the offer of a watch event', () => {
    const m = parseJanus({
      janus: 'event',
      transaction: 't3',
      sender: 7,
      plugindata: { plugin: 'janus.plugin.streaming', data: { streaming: 'event', result: { status: 'preparing' } } },
      jsep: { type: 'offer', sdp: 'v=0\r\n' },
    });
    expect(m.jsep).toEqual({ type: 'offer', sdp: 'v=0\r\n' });
    expect(janusErrorOf(m)).toBeNull();
  });

  it('turns core and plugin errors into errors that say so', () => {
    const core = parseJanus({ janus: 'error', transaction: 't', error: { code: 458, reason: 'No such session' } });
    expect(janusErrorOf(core)).toBe('Janus error 458: No such session');
    const plugin = parseJanus({
      janus: 'success',
      plugindata: {
        plugin: 'janus.plugin.streaming',
        data: { streaming: 'event', error_code: 456, error: "Can't add 'rtp' stream" },
      },
    });
    expect(() => pluginData(plugin, createdSchema)).toThrow(
      /janus\.plugin\.streaming error 456: Can't add 'rtp' stream/,
    );
  });

  it('refuses malformed messages: no janus field, a bad jsep, ports out of range, data of another request', () => {
    expect(() => parseJanus({ transaction: 't' })).toThrow(JanusError);
    expect(() => parseJanus({ janus: 'event', jsep: { type: 'pranswer', sdp: 'v=0' } })).toThrow(JanusError);
    expect(() => parseJanus({ janus: 'event', jsep: { type: 'offer', sdp: 'x'.repeat(70_000) } })).toThrow(JanusError);
    expect(() => parseJanus({ janus: 'success', data: { id: -1 } })).toThrow(JanusError);
    expect(() => parseJanus('<html>')).toThrow(JanusError);
    const bad = structuredClone(created);
    bad.plugindata.data.stream.ports[1]!.port = 70_000;
    expect(() => pluginData(parseJanus(bad), createdSchema)).toThrow(/unexpected plugin data/);
    expect(() => pluginData(parseJanus(created), infoSchema)).toThrow(/unexpected plugin data/);
  });
});
