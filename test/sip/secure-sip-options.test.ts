import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SIP_TLS_SPEC, secureSipOptions, WS_SPEC } from '../../src/sip/secure-sip-options.ts';
import { parseArgs } from '../../src/util/args.ts';

const SPEC = { ...SIP_TLS_SPEC, ...WS_SPEC };
const opts = (argv: string[], port = 5060, ws = true) =>
  secureSipOptions(parseArgs(argv, SPEC), { host: '192.0.2.7', port }, ws);

describe('--sip-tls, --wss and --ws', () => {
  it('default to the SIP port + 1 and + 2 on the SIP host; any free port when the SIP port is 0', () => {
    assert.deepEqual(opts([]), {
      tls: { host: '192.0.2.7', port: 5061 },
      ws: { host: '192.0.2.7', port: 5062, secure: true },
      certFile: undefined,
      keyFile: undefined,
    });
    const free = opts([], 0);
    assert.deepEqual([free.tls?.port, free.ws?.port], [0, 0]);
    assert.equal(opts([], 5060, false).ws, undefined, 'no WebSocket for a command without a browser phone');
  });

  it('take host:port or off', () => {
    const o = opts(['--sip-tls', '[::1]:6061', '--wss', 'off']);
    assert.deepEqual(o.tls, { host: '::1', port: 6061 });
    assert.equal(o.ws, undefined);
    assert.equal(opts(['--sip-tls', 'off']).tls, undefined);
    assert.deepEqual(opts(['--ws', '127.0.0.1:8080']).ws, { host: '127.0.0.1', port: 8080, secure: false });
  });

  it('refuse what cannot work, naming the option', () => {
    assert.throws(() => opts([], 65535), /--sip-tls: the --sip port \+ 1 is past 65535/);
    assert.throws(() => opts(['--sip-tls', 'off'], 65534), /--wss: the --sip port \+ 2 is past 65535/);
    assert.throws(() => opts(['--ws', '192.0.2.7:80']), /--ws must be on a loopback address/);
    assert.throws(() => opts(['--ws', '127.0.0.1:80', '--wss', '127.0.0.1:81']), /--ws replaces --wss/);
    assert.throws(() => opts(['--sip-tls', '127.0.0.1:99999']), /--sip-tls port must be at most 65535/);
    assert.throws(() => opts(['--sip-tls-key', 'k.pem']), /go together/);
    assert.throws(() => opts(['--sip-tls', '1.2.3.4:7000', '--wss', '1.2.3.4:7000']), /same port/);
  });
});
