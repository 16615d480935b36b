// The microphone, resampled to the session's input rate and posted as PCM16 chunks.
//
// Each output sample is the mean of the input samples in its window (a boxcar
// low-pass, then decimation), which keeps speech clean from 44.1/48 kHz down to
// 16 or 24 kHz without aliasing the band that matters.
class BidiCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions || {};
    this.ratio = sampleRate / o.targetRate; // input samples per output sample
    this.chunk = Math.max(1, Math.round((o.targetRate * (o.chunkMs || 20)) / 1000));
    this.out = new Int16Array(this.chunk);
    this.fill = 0;
    this.sum = 0;
    this.count = 0;
    this.pos = 0;
    this.active = true;
    this.port.onmessage = (event) => {
      if (event.data === "stop") this.active = false;
    };
  }

  process(inputs) {
    if (!this.active) return false;
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const channels = input.length;
    const frames = input[0].length;
    for (let i = 0; i < frames; i++) {
      let sample = 0;
      for (let c = 0; c < channels; c++) sample += input[c][i];
      this.sum += sample / channels;
      this.count += 1;
      this.pos += 1;
      if (this.pos >= this.ratio) {
        this.pos -= this.ratio;
        const value = Math.round((this.sum / this.count) * 32767);
        this.sum = 0;
        this.count = 0;
        this.out[this.fill++] = Math.max(-32768, Math.min(32767, value));
        if (this.fill === this.chunk) {
          this.port.postMessage(this.out.buffer, [this.out.buffer]);
          this.out = new Int16Array(this.chunk);
          this.fill = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("bidi-capture", BidiCapture);
