// The browser phone served at /phone by an adapter (bundled with JsSIP by phone-page.ts). It registers as
// sip:<name>@<adapter> over the WebSocket it was served from (RFC 7118), places and answers calls with WebRTC
// media (DTLS-SRTP, ICE), and shows who calls and whether the overlay verified the caller: the callee's adapter
// adds X-Secp2psip-Verified to an INVITE whose caller it verified through the ring (and strips it from any other).
// `window.phone` is the same API the buttons use, for scripted use (the end-to-end tests drive it).
import JsSIP from 'jssip';

const VERIFIED_HEADER = 'X-Secp2psip-Verified';
const $ = (id) => document.getElementById(id);

const state = {
  ua: null,
  session: null,
  registered: false,
  status: 'not registered',
  /** The last incoming call: who, and whether the overlay verified the caller. */
  incoming: null,
  /** Finished calls, newest last: { direction, peer, verified, cause, endedBy, established }. */
  log: [],
};

function show(text) {
  state.status = text;
  const el = $('status');
  if (el) el.textContent = text;
}

function iceServers() {
  const urls = ($('ice')?.value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (urls.length === 0) return [];
  const username = $('iceUser')?.value || undefined;
  const credential = $('icePass')?.value || undefined;
  return [{ urls, username, credential }];
}

function callOptions() {
  const relay = $('iceRelay')?.checked === true;
  return {
    mediaConstraints: { audio: true, video: false },
    pcConfig: { iceServers: iceServers(), iceTransportPolicy: relay ? 'relay' : 'all' },
    rtcOfferConstraints: { offerToReceiveAudio: true },
  };
}

function buttons() {
  const s = state.session;
  $('answer').disabled = !(s && s.direction === 'incoming' && !s.isEstablished() && !s.isEnded());
  $('hangup').disabled = !(s && !s.isEnded());
}

function attachRemoteAudio(session) {
  const pc = session.connection;
  if (!pc) return;
  pc.addEventListener('track', (ev) => {
    const audio = $('remote');
    if (audio && ev.streams[0]) audio.srcObject = ev.streams[0];
  });
}

function track(session, direction, peer, verified) {
  state.session = session;
  const entry = { direction, peer, verified, cause: null, endedBy: null, established: false };
  session.on('peerconnection', () => attachRemoteAudio(session));
  if (session.connection) attachRemoteAudio(session);
  session.on('accepted', () => show(`in call with ${peer}`));
  session.on('confirmed', () => {
    entry.established = true;
    show(`in call with ${peer}`);
    buttons();
  });
  const end = (cause, originator) => {
    entry.cause = cause;
    entry.endedBy = originator;
    state.log.push(entry);
    if (state.session === session) state.session = null;
    show(`call ${direction === 'incoming' ? 'from' : 'to'} ${peer} ended: ${cause}`);
    buttons();
  };
  session.on('ended', (e) => end(e.cause, e.originator));
  session.on('failed', (e) => end(e.cause, e.originator));
  buttons();
}

function register(name, password) {
  if (state.ua) state.ua.stop();
  const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
  const socket = new JsSIP.WebSocketInterface(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`);
  const ua = new JsSIP.UA({
    sockets: [socket],
    uri: `sip:${name}@${host}`,
    password: password || undefined,
    register: true,
    session_timers: false,
    user_agent: 'secp2psip browser phone (JsSIP)',
  });
  state.ua = ua;
  state.registered = false;
  ua.on('registered', () => {
    state.registered = true;
    show(`registered as ${name}`);
  });
  ua.on('unregistered', () => {
    state.registered = false;
    show('not registered');
  });
  ua.on('registrationFailed', (e) => {
    state.registered = false;
    show(
      `registration failed: ${e.cause}${e.response ? ` (${e.response.status_code} ${e.response.reason_phrase})` : ''}`,
    );
  });
  ua.on('newRTCSession', (e) => {
    if (e.originator !== 'remote') return;
    const s = e.session;
    if (state.session && !state.session.isEnded()) {
      s.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
      return;
    }
    const who = s.remote_identity.uri.user || s.remote_identity.uri.toString();
    const verifiedAs = e.request.getHeader(VERIFIED_HEADER);
    const verified = verifiedAs !== undefined && verifiedAs !== null && verifiedAs.trim() === who;
    state.incoming = { from: who, verified, display: s.remote_identity.display_name || null };
    $('caller').textContent = verified
      ? `${who} is calling: verified by the overlay ✓`
      : `${who} is calling: NOT verified by the overlay`;
    $('caller').className = verified ? 'verified' : 'unverified';
    show(`incoming call from ${who}`);
    track(s, 'incoming', who, verified);
  });
  show('registering…');
  ua.start();
}

function call(target) {
  if (!state.ua) throw new Error('register first');
  const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
  const uri = target.includes('@') ? target : `sip:${target}@${host}`;
  const peer = target.replace(/^sips?:/, '').split('@')[0];
  $('caller').textContent = '';
  show(`calling ${peer}…`);
  track(state.ua.call(uri.startsWith('sip') ? uri : `sip:${uri}`, callOptions()), 'outgoing', peer, null);
}

function answer() {
  if (state.session?.direction !== 'incoming') throw new Error('no incoming call');
  state.session.answer(callOptions());
}

function hangup() {
  if (state.session && !state.session.isEnded()) state.session.terminate();
}

/** RTP counters of the current call's peer connection (RTCPeerConnection.getStats). */
async function mediaStats() {
  const pc = state.session?.connection;
  if (!pc) return null;
  const out = { packetsReceived: 0, packetsSent: 0, bytesReceived: 0, dtls: null, pair: null };
  const stats = await pc.getStats();
  stats.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') {
      out.packetsReceived += r.packetsReceived ?? 0;
      out.bytesReceived += r.bytesReceived ?? 0;
    }
    if (r.type === 'outbound-rtp' && r.kind === 'audio') out.packetsSent += r.packetsSent ?? 0;
    if (r.type === 'transport') out.dtls = { state: r.dtlsState, srtpCipher: r.srtpCipher ?? null };
    if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded')
      out.pair = {
        local: stats.get(r.localCandidateId)?.candidateType ?? null,
        remote: stats.get(r.remoteCandidateId)?.candidateType ?? null,
      };
  });
  return out;
}

window.phone = {
  register,
  call,
  answer,
  hangup,
  mediaStats,
  get state() {
    const s = state.session;
    return {
      registered: state.registered,
      status: state.status,
      incoming: state.incoming,
      inCall: Boolean(s?.isEstablished() && !s.isEnded()),
      ringing: Boolean(s && s.direction === 'incoming' && !s.isEstablished() && !s.isEnded()),
      log: state.log.slice(),
    };
  },
};

document.addEventListener('DOMContentLoaded', () => {
  $('register').addEventListener('click', () => register($('name').value.trim(), $('password').value));
  $('unregister').addEventListener('click', () => state.ua?.unregister());
  $('call').addEventListener('click', () => call($('target').value.trim()));
  $('answer').addEventListener('click', answer);
  $('hangup').addEventListener('click', hangup);
});
