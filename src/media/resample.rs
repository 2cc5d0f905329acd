//! A streaming sample-rate converter for the RTMP bridge: any rate the codecs produce (7.35-192
//! kHz) to the rate the other side needs (48 kHz for Opus, 44.1 or 48 kHz for AAC).
//!
//! A Kaiser-windowed sinc, tabulated at [`PHASES`] fractional positions and interpolated
//! linearly between them, so any ratio works with one small table. Runs on a transcoder thread
//! (never a media worker). Invariants: the read position advances by exactly `in/out` input
//! samples per output sample in integer arithmetic, so the output count never drifts (after
//! `n` input samples it is `n × out / in` minus a fixed delay of at most [`HALF_TAPS`] input
//! samples, ±1); the filter's history carries across calls, so chunk boundaries leave no trace;
//! input is interleaved with a fixed channel count, and a partial frame is an error.

use super::transcode::TranscodeError;

/// Zero crossings of the sinc on each side of the centre at unity ratio (wider when
/// decimating, where the filter's cutoff drops with the output rate).
pub const HALF_TAPS: usize = 16;
/// Rows of the filter table between two input samples.
pub const PHASES: usize = 256;
/// Kaiser window shape: about 80 dB of stop-band rejection.
const KAISER_BETA: f64 = 8.0;
/// Passband edge as a fraction of the lower Nyquist frequency (20.2 kHz at 44.1 kHz).
const ROLLOFF: f64 = 0.92;

/// Converts interleaved audio from one rate to another, carrying state across calls.
pub struct Resampler {
    channels: usize,
    /// The ratio in lowest terms: `step_den` output samples per `step_num` input samples.
    step_num: u64,
    step_den: u64,
    /// Taps per phase (input samples under the kernel).
    taps: usize,
    /// `(PHASES + 1) × taps` coefficients; row `p` is the kernel at fractional offset `p/PHASES`.
    table: Vec<f32>,
    /// Buffered input frames (interleaved); frame 0 is the kernel's first tap for `position`.
    history: Vec<f32>,
    /// The fractional part of the read position, in units of `1 / step_den` input samples.
    fraction: u64,
}

impl Resampler {
    pub fn new(input_rate: u32, output_rate: u32, channels: u8) -> Result<Self, TranscodeError> {
        for rate in [input_rate, output_rate] {
            if !(7_000..=192_000).contains(&rate) {
                return Err(TranscodeError::UnsupportedSampleRate(rate));
            }
        }
        if !(1..=2).contains(&channels) {
            return Err(TranscodeError::InvalidParameter(format!(
                "{channels} channels to resample"
            )));
        }
        let divisor = gcd(u64::from(input_rate), u64::from(output_rate));
        let (step_num, step_den) = (u64::from(input_rate) / divisor, u64::from(output_rate) / divisor);
        // The cutoff, in cycles per input sample; below 0.5 when decimating.
        let scale = (f64::from(output_rate) / f64::from(input_rate)).min(1.0);
        let cutoff = 0.5 * scale * ROLLOFF;
        let half = (HALF_TAPS as f64 / scale).ceil() as usize;
        let taps = 2 * half;
        let mut table = Vec::with_capacity((PHASES + 1) * taps);
        for phase in 0..=PHASES {
            let offset = phase as f64 / PHASES as f64;
            // Tap k multiplies input sample (centre - half + 1 + k): its distance from the
            // read position is offset + half - 1 - k.
            let row: Vec<f64> = (0..taps)
                .map(|k| {
                    let x = offset + half as f64 - 1.0 - k as f64;
                    2.0 * cutoff * sinc(2.0 * cutoff * x) * kaiser(x / half as f64)
                })
                .collect();
            let sum: f64 = row.iter().sum();
            // Unity gain at DC in every phase, so no phase-dependent ripple.
            table.extend(row.iter().map(|c| (c / sum) as f32));
        }
        let channels = usize::from(channels);
        Ok(Resampler {
            channels,
            step_num,
            step_den,
            taps,
            table,
            // half - 1 frames of silence before the first sample: output 0 is centred on input 0.
            history: vec![0.0; (half - 1) * channels],
            fraction: 0,
        })
    }

    /// Whether this converts at all (`false` when both rates are equal).
    pub fn is_passthrough(&self) -> bool {
        self.step_num == self.step_den
    }

    /// Append the resampled form of `input` (interleaved f32) to `output`.
    pub fn process(&mut self, input: &[f32], output: &mut Vec<f32>) -> Result<(), TranscodeError> {
        if !input.len().is_multiple_of(self.channels) {
            return Err(TranscodeError::InvalidParameter(
                "a partial frame to resample".into(),
            ));
        }
        if self.is_passthrough() {
            output.extend_from_slice(input);
            return Ok(());
        }
        self.history.extend_from_slice(input);
        let frames = self.history.len() / self.channels;
        let mut start = 0usize;
        output.reserve((input.len() as u64 * self.step_den / self.step_num) as usize + self.channels);
        while start + self.taps <= frames {
            let scaled = self.fraction * PHASES as u64;
            let row = (scaled / self.step_den) as usize;
            let blend = (scaled % self.step_den) as f32 / self.step_den as f32;
            let (Some(low), Some(high)) = (
                self.table.get(row * self.taps..(row + 1) * self.taps),
                self.table.get((row + 1) * self.taps..(row + 2) * self.taps),
            ) else {
                break;
            };
            let window = self
                .history
                .get(start * self.channels..(start + self.taps) * self.channels);
            let Some(window) = window else { break };
            for channel in 0..self.channels {
                let (mut a, mut b) = (0.0f32, 0.0f32);
                for ((x, l), h) in window
                    .iter()
                    .skip(channel)
                    .step_by(self.channels)
                    .zip(low)
                    .zip(high)
                {
                    a += x * l;
                    b += x * h;
                }
                output.push(a + (b - a) * blend);
            }
            // Advance by step_num / step_den input samples, exactly.
            self.fraction += self.step_num;
            start += (self.fraction / self.step_den) as usize;
            self.fraction %= self.step_den;
        }
        let consumed = (start * self.channels).min(self.history.len());
        self.history.drain(..consumed);
        Ok(())
    }

    /// As [`process`](Self::process), for 16-bit samples (rounded and clamped on the way out).
    pub fn process_i16(&mut self, input: &[i16], output: &mut Vec<i16>) -> Result<(), TranscodeError> {
        let floats: Vec<f32> = input.iter().map(|&s| f32::from(s) / 32_768.0).collect();
        let mut resampled = Vec::new();
        self.process(&floats, &mut resampled)?;
        output.extend(resampled.iter().map(|&s| to_i16(s)));
        Ok(())
    }
}

/// A float sample in [-1, 1] as i16, clamped.
pub fn to_i16(sample: f32) -> i16 {
    (sample * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// The Kaiser window at `x` in [-1, 1] (zero outside).
fn kaiser(x: f64) -> f64 {
    if x.abs() >= 1.0 {
        return 0.0;
    }
    bessel_i0(KAISER_BETA * (1.0 - x * x).sqrt()) / bessel_i0(KAISER_BETA)
}

fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term) = (1.0, 1.0);
    for k in 1..50 {
        term *= (x / (2.0 * k as f64)).powi(2);
        sum += term;
        if term < sum * 1e-16 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f64, frames: usize, channels: usize) -> Vec<f32> {
        (0..frames)
            .flat_map(|i| {
                let s = (i as f64 * hz * std::f64::consts::TAU / f64::from(rate)).sin() as f32 * 0.5;
                std::iter::repeat_n(s, channels)
            })
            .collect()
    }

    /// Frequency from upward zero crossings of channel 0, skipping the first `skip` frames.
    fn frequency(samples: &[f32], channels: usize, rate: u32, skip: usize) -> f64 {
        let mono: Vec<f32> = samples.iter().step_by(channels).skip(skip).copied().collect();
        let crossings: Vec<usize> = (1..mono.len())
            .filter(|&i| mono[i - 1] < 0.0 && mono[i] >= 0.0)
            .collect();
        let (first, last) = (crossings[0], crossings[crossings.len() - 1]);
        (crossings.len() - 1) as f64 * f64::from(rate) / (last - first) as f64
    }

    #[test]
    fn a_tone_keeps_its_frequency_and_the_length_does_not_drift() {
        for channels in [1u8, 2] {
            let ch = usize::from(channels);
            let mut resampler = Resampler::new(44_100, 48_000, channels).unwrap();
            let input = sine(44_100, 1000.0, 441_000, ch);
            let mut output = Vec::new();
            // Uneven chunks, as decoders deliver them.
            for chunk in input.chunks(1024 * ch).chain(std::iter::empty()) {
                resampler.process(chunk, &mut output).unwrap();
            }
            let frames = output.len() / ch;
            let expected = 441_000 * 48_000 / 44_100;
            assert!(
                expected - frames <= HALF_TAPS + 1,
                "{frames} frames for {expected}"
            );
            let hz = frequency(&output, ch, 48_000, 100);
            assert!((hz - 1000.0).abs() < 0.05, "{hz} Hz");
            // No clicks at chunk boundaries: the largest step between samples is a sine's.
            let max_step = output[200 * ch..]
                .windows(2 * ch)
                .map(|w| (w[ch] - w[0]).abs())
                .fold(0.0, f32::max);
            let sine_step = (0.5 * std::f64::consts::TAU * 1000.0 / 48_000.0) as f32;
            assert!(max_step < sine_step * 1.01, "step {max_step} vs {sine_step}");
        }
    }

    #[test]
    fn odd_rates_and_both_directions_count_exactly() {
        for (from, to) in [
            (8_000, 48_000),
            (96_000, 48_000),
            (48_000, 44_100),
            (44_056, 48_000),
            (11_025, 48_000),
        ] {
            let mut resampler = Resampler::new(from, to, 1).unwrap();
            let mut output = Vec::new();
            let mut fed = 0u64;
            for chunk in 0..400 {
                let n = 100 + (chunk * 37) % 500;
                resampler.process(&vec![0.25; n], &mut output).unwrap();
                fed += n as u64;
            }
            let expected = fed * u64::from(to) / u64::from(from);
            let delay = (HALF_TAPS as u64 * 2 * u64::from(to)).div_ceil(u64::from(from)) + 2;
            let got = output.len() as u64;
            assert!(
                got <= expected + 1 && expected - got <= delay,
                "{from}->{to}: {got} vs {expected}"
            );
            // DC passes at unity gain once the filter has filled.
            let tail = &output[output.len() - 100..];
            assert!(tail.iter().all(|&s| (s - 0.25).abs() < 1e-4), "{from}->{to}");
        }
    }

    #[test]
    fn decimation_rejects_what_the_output_cannot_hold() {
        // 30 kHz at 96 kHz is above 24 kHz Nyquist at 48 kHz: it must vanish, not alias to 18 kHz.
        let mut resampler = Resampler::new(96_000, 48_000, 1).unwrap();
        let mut output = Vec::new();
        resampler
            .process(&sine(96_000, 30_000.0, 96_000, 1), &mut output)
            .unwrap();
        let peak = output[200..].iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak < 0.5 * 1e-3, "aliased peak {peak}");
    }

    #[test]
    fn refuses_bad_parameters() {
        assert!(Resampler::new(0, 48_000, 1).is_err());
        assert!(Resampler::new(44_100, 48_000, 3).is_err());
        let mut stereo = Resampler::new(44_100, 48_000, 2).unwrap();
        assert!(stereo.process(&[0.0; 3], &mut Vec::new()).is_err());
        let mut same = Resampler::new(48_000, 48_000, 2).unwrap();
        let mut out = Vec::new();
        same.process_i16(&[1, 2, 3, 4], &mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 4]);
    }
}
