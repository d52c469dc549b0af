"""Raw Kafka frames for the partition side of transactions, so a test can
write transactional batches and COMMIT/ABORT markers without a transaction
coordinator: Produce v3 with kafka-python's record-batch builder (its
transactional flag), WriteTxnMarkers v0 (classic encoding, as Kafka 2.x/3.x
brokers send it) and v1 (flexible), ListOffsets v2 with an isolation level."""
import socket
import struct

from kafka.record.default_records import DefaultRecordBatchBuilder

from fjordtest.kafka_wire import frame, recv_frame

PRODUCE, LIST_OFFSETS, WRITE_TXN_MARKERS = 0, 2, 27


def _str(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _uvarint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def _compact_str(s):
    b = s.encode()
    return _uvarint(len(b) + 1) + b


def batch(values, pid=-1, epoch=-1, seq=-1, transactional=False):
    """A v2 record batch of `values` (bytes), from producer `pid`."""
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=transactional,
                                  producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                                  batch_size=1 << 20)
    for i, v in enumerate(values):
        b.append(i, timestamp=None, key=None, value=v, headers=[])
    return bytes(b.build())


def control(b):
    """`b` with the control attribute set (CRC-32C recomputed): what only a
    broker may write."""
    from kafka.record.util import calc_crc32c
    b = bytearray(b)
    (attrs,) = struct.unpack_from(">h", b, 21)
    struct.pack_into(">h", b, 21, attrs | 0x20)
    struct.pack_into(">I", b, 17, calc_crc32c(bytes(b[21:])))
    return bytes(b)


class Conn:
    """One connection to a broker; requests answered in order."""

    def __init__(self, bootstrap, timeout=10.0):
        host, port = bootstrap.split(",")[0].rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=timeout)
        self.corr = 0

    def close(self):
        self.s.close()

    def call(self, key, version, body, flexible_header=False):
        self.corr += 1
        if flexible_header:
            # request header v2: v1's fields plus (empty) tagged fields
            hdr = struct.pack(">hhi", key, version, self.corr) + _str("test") + b"\x00"
            self.s.sendall(struct.pack(">i", len(hdr) + len(body)) + hdr + body)
        else:
            self.s.sendall(frame(key, version, self.corr, body))
        r = recv_frame(self.s)
        (corr,) = struct.unpack_from(">i", r, 0)
        assert corr == self.corr, (corr, self.corr)
        return r[5:] if flexible_header else r[4:]

    def produce(self, topic, partition, records, transactional_id=None, acks=-1):
        """Produce v3 of one batch: (error code, base offset)."""
        body = (struct.pack(">h", -1) if transactional_id is None else _str(transactional_id))
        body += struct.pack(">hi", acks, 10000)
        body += struct.pack(">i", 1) + _str(topic)
        body += struct.pack(">i", 1) + struct.pack(">i", partition)
        body += struct.pack(">i", len(records)) + records
        r = self.call(PRODUCE, 3, body)
        off = 4  # topics count
        (n,) = struct.unpack_from(">h", r, off)
        off += 2 + n + 4  # name, partitions count
        _, err, base = struct.unpack_from(">ihq", r, off)
        return err, base

    def markers(self, pid, epoch, commit, topic, partitions, coordinator_epoch=0, version=0):
        """WriteTxnMarkers of one marker: {partition: error code}."""
        if version == 0:
            body = struct.pack(">i", 1) + struct.pack(">qh?", pid, epoch, commit)
            body += struct.pack(">i", 1) + _str(topic)
            body += struct.pack(">i", len(partitions))
            body += b"".join(struct.pack(">i", p) for p in partitions)
            body += struct.pack(">i", coordinator_epoch)
            r = self.call(WRITE_TXN_MARKERS, 0, body)
            off = 4 + 8 + 4  # markers count, producer id, topics count
            (n,) = struct.unpack_from(">h", r, off)
            off += 2 + n
            (k,) = struct.unpack_from(">i", r, off)
            off += 4
        else:
            body = _uvarint(2) + struct.pack(">qh?", pid, epoch, commit)
            body += _uvarint(2) + _compact_str(topic)
            body += _uvarint(len(partitions) + 1)
            body += b"".join(struct.pack(">i", p) for p in partitions)
            body += b"\x00"  # topic tags
            body += struct.pack(">i", coordinator_epoch) + b"\x00"  # marker tags
            body += b"\x00"  # request tags
            r = self.call(WRITE_TXN_MARKERS, 1, body, flexible_header=True)
            off = 1 + 8 + 1  # markers (compact), producer id, topics (compact)
            n = r[off] - 1
            off += 1 + n
            k = r[off] - 1
            off += 1
        out = {}
        for _ in range(k):
            p, err = struct.unpack_from(">ih", r, off)
            off += 6 + (1 if version else 0)
            out[p] = err
        return out

    def latest(self, topic, partition, isolation):
        """ListOffsets v2 latest offset at an isolation level (0, 1)."""
        body = struct.pack(">ib", -1, isolation) + struct.pack(">i", 1) + _str(topic)
        body += struct.pack(">i", 1) + struct.pack(">iq", partition, -1)
        r = self.call(LIST_OFFSETS, 2, body)
        off = 4 + 4  # throttle, topics count
        (n,) = struct.unpack_from(">h", r, off)
        off += 2 + n + 4
        _, err, _, offset = struct.unpack_from(">ihqq", r, off)
        assert err == 0, err
        return offset
