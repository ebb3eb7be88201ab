# Capture UDP payloads to or from the given ports on the loopback interface for some seconds, printed as JSON
# hex strings: a raw AF_PACKET socket (root), so the end-to-end tests can look at media bytes on the wire
# without tcpdump. Usage: python3 capture.py PORT[,PORT...] SECONDS
import json
import socket
import struct
import sys
import time

ports = {int(p) for p in sys.argv[1].split(',')}
end = time.time() + float(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
s.bind(('lo', 0))
s.settimeout(0.2)
out = []
print('ready', flush=True, file=sys.stderr)
while time.time() < end:
    try:
        pkt = s.recv(65535)
    except socket.timeout:
        continue
    if len(pkt) < 42 or pkt[12:14] != b'\x08\x00':
        continue
    ip = pkt[14:]
    if ip[9] != 17:
        continue
    ihl = (ip[0] & 0x0F) * 4
    udp = ip[ihl:]
    sport, dport, ulen = struct.unpack('!HHH', udp[:6])
    if sport in ports or dport in ports:
        out.append({'from': sport, 'to': dport, 'hex': udp[8:ulen].hex()})
print(json.dumps(out))
