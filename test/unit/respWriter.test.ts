import { expect } from 'chai';
import { RespWriter, encodeCommand } from '../../src/redis/rawConnection';

describe('RespWriter: commands encoded as RESP into one Buffer', () => {
  it('encodes text as encodeCommand does (UTF-8 lengths in bytes, empty arguments), numbers as String() writes them', () => {
    const commands = [
      ['PING'],
      ['SET', 'k', ''],
      ['HSET', 'u:{ü}:p', 's1796', '3', 'T', 'a\x1eb=0:1\r\n'],
      ['PEXPIRE', 'k', '3600000', 'GT'],
      ['ZADD', 'i', '1e+21', '0.5'],
    ];
    const w = new RespWriter();
    for (const c of commands) w.command(c);
    w.command(['ZADD', 'i', 1e21, 0.5, 17]);
    expect(w.count).to.equal(6);
    expect(w.toBuffer().toString()).to.equal(commands.map(encodeCommand).join('') + encodeCommand(['ZADD', 'i', '1e+21', '0.5', '17']));
  });

  it('copies Buffers byte for byte, and grows past its first 16 KB', () => {
    const binary = Buffer.from([0, 255, 13, 10, 36, 42, 128]);
    const long = Buffer.alloc(40_000, 7);
    const w = new RespWriter().command(['HSET', 'k', 'd1', binary, 'e', Buffer.alloc(0)]);
    for (let i = 0; i < 500; i++) w.command(['HMGET', `key-${i}`, 'V', 'T']);
    w.command(['SET', 'big', long]);
    const expected = Buffer.concat([
      Buffer.from('*6\r\n$4\r\nHSET\r\n$1\r\nk\r\n$2\r\nd1\r\n$7\r\n'),
      binary,
      Buffer.from('\r\n$1\r\ne\r\n$0\r\n\r\n'),
      Buffer.from(Array.from({ length: 500 }, (_, i) => encodeCommand(['HMGET', `key-${i}`, 'V', 'T'])).join('')),
      Buffer.from('*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$40000\r\n'),
      long,
      Buffer.from('\r\n'),
    ]);
    expect(w.count).to.equal(502);
    expect(w.toBuffer().equals(expected)).to.equal(true);
  });
});
