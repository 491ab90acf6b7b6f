"""Opus both ways for a xiaozhi device: its 16 kHz microphone in, our 24 kHz speech out.

Uplink packets are decoded straight to the pipeline's 16 kHz PCM (libopus resamples any
packet to the decoder's rate), one decoder per connection so its state follows the stream.
A packet libopus cannot decode is dropped and counted: one bad packet is no reason to end
a conversation. Downlink reuses the toy's packetizer (24 kHz VOIP, zero-padded last frame),
at the 60 ms frame our ``hello`` announces.
"""

from __future__ import annotations

import opuslib

from transports.esp32.opus import OpusPacketizer

UPLINK_RATE_HZ = 16000
#: the longest Opus packet is 120 ms: the decoder's buffer fits any frame duration
MAX_PACKET_MS = 120

__all__ = ["MAX_PACKET_MS", "UPLINK_RATE_HZ", "OpusPacketizer", "UplinkDecoder"]


class UplinkDecoder:
    def __init__(self) -> None:
        self._decoder = opuslib.Decoder(UPLINK_RATE_HZ, 1)
        self.failed_packets = 0

    def decode(self, packet: bytes) -> bytes:
        """One Opus packet -> PCM16 at 16 kHz (empty when the packet is unreadable)."""
        try:
            pcm: bytes = self._decoder.decode(packet, UPLINK_RATE_HZ * MAX_PACKET_MS // 1000)
        except opuslib.OpusError:
            self.failed_packets += 1
            return b""
        return pcm
