// Gapless playback of the model's PCM16 audio: a queue of resampled chunks read one
// render quantum at a time. A "flush" message empties the queue at once (barge-in).
//
// It counts what it plays, per response, and reports it to the page, which tells
// the server how much of an interrupted answer was really heard.
class BidiPlayback extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions || {};
    this.step = o.sourceRate / sampleRate; // source samples per output frame
    this.queue = []; // {data: Float32Array at sampleRate, offset, rid}
    this.queued = 0; // frames queued, not played
    this.played = 0; // frames played since the start
    this.playedByResponse = new Map();
    this.rid = null; // the response last played
    this.flushes = 0;
    this.flushed = 0; // frames dropped by flushes
    this.prev = 0;
    this.havePrev = false;
    this.pos = 0;
    this.quanta = 0;
    this.dirty = false;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(message) {
    if (message.type === "audio") {
      this.enqueue(new Int16Array(message.pcm), message.rid);
    } else if (message.type === "flush") {
      this.flushes += 1;
      this.flushed += this.queued;
      this.queue = [];
      this.queued = 0;
      this.havePrev = false;
      this.pos = 0;
      this.report(true);
    }
  }

  // Linear interpolation from the source rate to the context rate, carrying the
  // last sample and the fractional position across chunks (no clicks at the seams).
  enqueue(pcm, rid) {
    const n = pcm.length;
    if (n === 0) return;
    const offset = this.havePrev ? 1 : 0;
    const src = new Float32Array(n + offset);
    if (this.havePrev) src[0] = this.prev;
    for (let i = 0; i < n; i++) src[i + offset] = pcm[i] / 32768;
    const last = src.length - 1;
    const step = this.step;
    let pos = this.pos;
    const out = new Float32Array(Math.max(0, Math.floor((last - pos) / step)) + 1);
    let k = 0;
    while (pos <= last && k < out.length) {
      const i = Math.floor(pos);
      const a = src[i];
      const b = i < last ? src[i + 1] : a;
      out[k++] = a + (b - a) * (pos - i);
      pos += step;
    }
    this.prev = src[last];
    this.havePrev = true;
    this.pos = pos - last;
    if (k > 0) {
      this.queue.push({ data: out.subarray(0, k), offset: 0, rid });
      this.queued += k;
    }
  }

  process(_inputs, outputs) {
    const output = outputs[0];
    const first = output[0];
    const frames = first.length;
    let k = 0;
    while (k < frames && this.queue.length > 0) {
      const head = this.queue[0];
      const take = Math.min(frames - k, head.data.length - head.offset);
      first.set(head.data.subarray(head.offset, head.offset + take), k);
      head.offset += take;
      k += take;
      this.queued -= take;
      this.played += take;
      this.rid = head.rid;
      this.playedByResponse.set(head.rid, (this.playedByResponse.get(head.rid) || 0) + take);
      this.dirty = true;
      if (head.offset >= head.data.length) this.queue.shift();
    }
    first.fill(0, k);
    for (let c = 1; c < output.length; c++) output[c].set(first);
    this.quanta += 1;
    if (this.quanta % 8 === 0 && this.dirty) this.report(false);
    return true;
  }

  report(flush) {
    this.dirty = false;
    if (this.playedByResponse.size > 32) {
      const oldest = this.playedByResponse.keys().next().value;
      this.playedByResponse.delete(oldest);
    }
    this.port.postMessage({
      type: "stats",
      flush,
      played: this.played,
      queued: this.queued,
      flushes: this.flushes,
      flushed: this.flushed,
      rid: this.rid,
      ridPlayed: this.playedByResponse.get(this.rid) || 0,
    });
  }
}

registerProcessor("bidi-playback", BidiPlayback);
