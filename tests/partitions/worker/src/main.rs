// SPDX-License-Identifier: Apache-2.0 OR MIT
//! worker: does a fixed unit of work over and over and counts the units
//! against the virtual counter, for the time-window and budget tests and the
//! window-switch benchmark (issue 11; `docs/testing.md`, *Time
//! partitioning*).
//!
//! The virtual counter (CNTVCT_EL0) counts from power-on on every core alike
//! (the kernel gives it no offset), so partitions that never talk agree on
//! what "between 100 ms and 700 ms" means. Under `-icount shift=0` one
//! instruction takes one nanosecond, so work counted in units of a fixed
//! instruction count is time on the core, and runs repeat exactly.
//!
//! Its setting `role` says what it does:
//!
//! - `"work"` (the default): calibrates the unit, counting included (the
//!   fastest of 16 batches of 128 units, in picoseconds: under icount,
//!   instructions times 1,000; about 1,330 instructions), then counts the
//!   units it finishes while the counter lies in the interval the settings
//!   `from` and `for` give (100 ms and 600 ms unless set), and the separate
//!   stretches it ran in (a gap over 20 us between two units ends one).
//!   After the interval it prints one line, every vCPU its own: `worker:
//!   vcpu=V units=N unit-ps=P from-us=F for-us=L runs=R longest-run-us=X
//!   longest-gap-us=G`, then `worker: vcpu=V done`, and parks: it calls the
//!   endpoint `park`, which its server never receives on, so it blocks for
//!   ever (without one, it yields for ever). Parking matters on a kernel
//!   that ignores windows and budgets: a worker of high priority that kept
//!   spinning would keep the others from ever printing their count.
//!   The tests' checks (`tools/xtask/src/test/windows.rs`) compare the
//!   partitions' counts. The interval should be a whole number of major
//!   frames (or budget periods), so that where it starts in the frame does
//!   not matter.
//! - `"stamp"`: writes the counter into word 0 of the shared region `stamp`
//!   as fast as it can, for ever: the partition whose window ends at the
//!   boundary the benchmark times. Its last value before the boundary's
//!   interrupt is at most one turn of its loop (a dozen instructions) old.
//! - `"lateness"`: the window-switch benchmark, in the partition `bench`
//!   (its lines start `bench: `, which `cargo xtask bench` reads). From
//!   `from` (100 ms unless set), it watches its own counter readings for
//!   the gaps that separate its windows, and at the first reading of each
//!   window takes the stamp's value: the difference is the switch, from the
//!   previous window's last instruction (the boundary's timer interrupt
//!   comes right after it) to its own first. Over `frames` windows (1,000
//!   unless set) it reports the average switch and the worst lateness: how
//!   much later than the boundary's nominal time a window started, where
//!   the nominal boundary of frame k is the earliest the previous window
//!   was ever interrupted, moved on by k major frames (`frame`, with
//!   `window` the length of its own window, 1 ms and 500 us unless set).
//!   A run whose length is not its window's within a tenth, a frame without
//!   its window, or no window at all by twice the time the frames should
//!   take, ends it with `bench: windows not kept: WHY` instead. Then
//!   `bench: done`.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use core::sync::atomic::Ordering;

use svc_rt::call::{self, Message};
use svc_rt::hypercall::CapSlot;
use svc_rt::shared::{Region, Window};

svc_rt::entry!(main);

/// What it does (above).
const ROLE: &str = match svc_rt::optional_setting!(ROLE) {
    Some(text) => text,
    None => "work",
};

/// When the counting (or watching) starts, in nanoseconds of counter time
/// since power-on.
const FROM_NS: u64 = match svc_rt::optional_setting!(FROM) {
    Some(text) => svc_rt::parse_duration(text),
    None => 100_000_000,
};

/// How long the counting lasts.
const FOR_NS: u64 = match svc_rt::optional_setting!(FOR) {
    Some(text) => svc_rt::parse_duration(text),
    None => 600_000_000,
};

/// The benchmark's major frame.
const FRAME_NS: u64 = match svc_rt::optional_setting!(FRAME) {
    Some(text) => svc_rt::parse_duration(text),
    None => 1_000_000,
};

/// The benchmark's own window in it.
const WINDOW_NS: u64 = match svc_rt::optional_setting!(WINDOW) {
    Some(text) => svc_rt::parse_duration(text),
    None => 500_000,
};

/// How many of its windows the benchmark times.
const FRAMES: u64 = match svc_rt::optional_setting!(FRAMES) {
    Some(text) => svc_rt::parse_number(text),
    None => 1_000,
};

/// A pause between two readings longer than this is a gap: something else
/// ran. Far longer than a unit of work (about 1.3 us) or a
/// kernel tick, far shorter than any window (100 us at least).
const GAP_NS: u64 = 20_000;

/// The endpoint it parks on once it has reported.
const PARK: Option<CapSlot> = svc_rt::optional_cap!(PARK);

/// The region `stamp` of the benchmark's two partitions.
const STAMP_WINDOW: Option<Window> = match option_env!("BULKHEAD_SHARED_STAMP") {
    Some(text) => Some(Window::parse(text)),
    None => None,
};

/// Rounds of the xorshift in one unit of work.
const UNIT_ROUNDS: u32 = 256;
/// Units in one calibration batch (about 170 us).
const BATCH: u64 = 128;
/// Calibration batches; the fastest counts.
const BATCHES: u32 = 16;

fn main(start: svc_rt::Start) -> ! {
    match ROLE.as_bytes() {
        b"work" => work(&start),
        b"stamp" => stamp(&start),
        b"lateness" => lateness(&start),
        _ => panic!("the setting `role` is \"work\", \"stamp\" or \"lateness\""),
    }
}

/// One unit of work: a fixed number of instructions, whatever the input.
#[inline(never)]
fn unit(seed: u64) -> u64 {
    let mut x = core::hint::black_box(seed | 1);
    for _ in 0..UNIT_ROUNDS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    core::hint::black_box(x)
}

/// Nanoseconds as counter ticks at `frequency`.
fn ticks(nanoseconds: u64, frequency: u64) -> u64 {
    (u128::from(nanoseconds) * u128::from(frequency) / 1_000_000_000) as u64
}

/// Counter ticks at `frequency` as `unit`ths of a second (1,000,000 for
/// microseconds, 10^9 for nanoseconds: instructions under icount), rounded.
fn scaled(ticks: u64, frequency: u64, unit: u64) -> u64 {
    let frequency = u128::from(frequency.max(1));
    ((u128::from(ticks) * u128::from(unit) + frequency / 2) / frequency) as u64
}

/// Blocks for ever once its work is reported (above).
fn park() -> ! {
    if let Some(park) = PARK {
        let _ = call::call(park, &Message::default());
    }
    loop {
        call::yield_now();
    }
}

/// What a worker counts, in counter ticks.
struct Tally {
    /// The interval: units finished at or after `from` and before `until`
    /// count.
    from: u64,
    until: u64,
    /// A pause longer than this between two readings is a gap.
    gap: u64,
    seed: u64,
    units: u64,
    runs: u64,
    longest_run: u64,
    longest_gap: u64,
    previous: u64,
    run_start: u64,
}

impl Tally {
    fn new(from: u64, until: u64, gap: u64, seed: u64) -> Self {
        let now = svc_rt::counter();
        Self {
            from,
            until,
            gap,
            seed,
            units: 0,
            runs: 0,
            longest_run: 0,
            longest_gap: 0,
            previous: now,
            run_start: now,
        }
    }

    /// One turn of the loop: a unit of work, then the counter read and the
    /// unit counted. True once the interval is over. The calibration times
    /// this very function, so that a unit's cost includes the counting
    /// (without it, the time worked came out 3.4% short, a unit of 64
    /// rounds against a dozen instructions of counting).
    #[inline(never)]
    fn turn(&mut self) -> bool {
        self.seed = unit(self.seed);
        let now = svc_rt::counter();
        if now >= self.until {
            return true;
        }
        if now >= self.from {
            self.units += 1;
            if self.runs == 0 {
                self.runs = 1;
                self.run_start = now;
            } else if now - self.previous > self.gap {
                self.longest_gap = self.longest_gap.max(now - self.previous);
                self.longest_run = self.longest_run.max(self.previous - self.run_start);
                self.runs += 1;
                self.run_start = now;
            }
        }
        self.previous = now;
        false
    }
}

fn work(start: &svc_rt::Start) -> ! {
    let frequency = svc_rt::counter_frequency();
    let from = ticks(FROM_NS, frequency);
    let until = from + ticks(FOR_NS, frequency);
    let gap = ticks(GAP_NS, frequency);
    if start.vcpu == 0 {
        svc_rt::println!(
            "worker: counting units of work from {} ms for {} ms",
            FROM_NS / 1_000_000,
            FOR_NS / 1_000_000
        );
    }
    // Calibration: batches of turns that count every unit (the path the
    // interval takes), the fastest batch being one nothing interrupted.
    let mut scratch = Tally::new(0, u64::MAX, gap, start.vcpu + 1);
    let mut fastest = u64::MAX;
    for _ in 0..BATCHES {
        let before = svc_rt::counter();
        for _ in 0..BATCH {
            scratch.turn();
        }
        fastest = fastest.min(svc_rt::counter() - before);
    }
    let unit_ps = scaled(fastest, frequency, 1_000_000_000_000) / BATCH;

    let mut tally = Tally::new(from, until, gap, scratch.seed);
    while !tally.turn() {}
    if tally.runs > 0 {
        tally.longest_run = tally.longest_run.max(tally.previous - tally.run_start);
    }
    svc_rt::println!(
        "worker: vcpu={} units={} unit-ps={unit_ps} from-us={} for-us={} runs={} longest-run-us={} longest-gap-us={}",
        start.vcpu,
        tally.units,
        FROM_NS / 1_000,
        FOR_NS / 1_000,
        tally.runs,
        scaled(tally.longest_run, frequency, 1_000_000),
        scaled(tally.longest_gap, frequency, 1_000_000)
    );
    // A line of its own, for the tests to wait for: once it is there, the
    // count's line is whole.
    svc_rt::println!("worker: vcpu={} done", start.vcpu);
    park()
}

/// The region `stamp`, which the benchmark's two partitions share.
fn stamp_region(start: &svc_rt::Start) -> Region {
    let Some(window) = STAMP_WINDOW else {
        panic!("roles `stamp` and `lateness` need the shared region `stamp`");
    };
    let Ok(region) = Region::new(start, window) else {
        panic!("the stamp region lies in RAM");
    };
    region
}

fn stamp(start: &svc_rt::Start) -> ! {
    let region = stamp_region(start);
    loop {
        region.store64(0, svc_rt::counter(), Ordering::Relaxed);
    }
}

/// What the benchmark gathered over its windows, in counter ticks.
struct Windows {
    /// The first reading of the first window timed.
    first: u64,
    /// Windows timed.
    count: u64,
    /// The frame of the last one, counted from `first`'s.
    frame: u64,
    /// The switches, added up.
    switches: u64,
    /// The latest any window started, less its frame's offset from `first`.
    latest: u64,
    /// The earliest the stamp's partition was last seen before a boundary,
    /// less the frame's offset from `first` (it may lie before `first`).
    earliest_stamp: i128,
}

impl Windows {
    /// Takes window `now` (its first reading), whose predecessor last
    /// stamped `stamp`; fails unless it is the next frame's.
    fn take(&mut self, now: u64, stamp: u64, frame: u64) -> Result<(), &'static str> {
        let offset = now - self.first;
        let k = (offset + frame / 2) / frame;
        if self.count > 0 && k != self.frame + 1 {
            return Err(if k <= self.frame {
                "a window started twice in one frame"
            } else {
                "a frame went by without its window"
            });
        }
        self.frame = k;
        self.count += 1;
        self.switches += now.saturating_sub(stamp);
        self.latest = self.latest.max(now - k * frame);
        self.earliest_stamp = self
            .earliest_stamp
            .min(i128::from(stamp) - i128::from(k * frame));
        Ok(())
    }
}

fn lateness(start: &svc_rt::Start) -> ! {
    let region = stamp_region(start);
    let frequency = svc_rt::counter_frequency();
    let frame = ticks(FRAME_NS, frequency);
    let window = ticks(WINDOW_NS, frequency);
    let gap = ticks(GAP_NS, frequency);
    let from = ticks(FROM_NS, frequency);
    let deadline = from + 2 * FRAMES * frame + 2 * frame;
    let result = watch(&region, from, deadline, frame, window, gap);
    match result {
        Ok(windows) => {
            let lateness = (i128::from(windows.latest) - windows.earliest_stamp).max(0) as u64;
            svc_rt::println!(
                "bench: {} windows of {} us in frames of {} us timed",
                windows.count,
                WINDOW_NS / 1_000,
                FRAME_NS / 1_000
            );
            svc_rt::println!(
                "bench: window switch {} instructions",
                scaled(windows.switches, frequency, 1_000_000_000) / windows.count.max(1)
            );
            svc_rt::println!(
                "bench: window lateness {} instructions",
                scaled(lateness, frequency, 1_000_000_000)
            );
        }
        Err(why) => svc_rt::println!("bench: windows not kept: {why}"),
    }
    svc_rt::println!("bench: done");
    park()
}

/// Why the windows were not kept, with the numbers that show it.
enum NotKept {
    /// No gap in its readings: it ran all the time.
    NoGap,
    /// A run of this many microseconds, not its window's length.
    Run(u64),
    /// Only so many windows by the deadline.
    TooFew(u64),
    /// The frames' order was wrong.
    Order(&'static str, u64),
}

impl core::fmt::Display for NotKept {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NotKept::NoGap => write!(
                f,
                "it ran without a gap until the deadline, never leaving its {} us window of every {} us",
                WINDOW_NS / 1_000,
                FRAME_NS / 1_000
            ),
            NotKept::Run(us) => write!(
                f,
                "it ran {us} us without a gap, in a window of {} us every {} us",
                WINDOW_NS / 1_000,
                FRAME_NS / 1_000
            ),
            NotKept::TooFew(count) => {
                write!(f, "{count} of its windows by the deadline, not {FRAMES}")
            }
            NotKept::Order(why, count) => write!(f, "{why}, after {count} windows"),
        }
    }
}

/// Watches the windows from `from` until [`FRAMES`] are timed.
fn watch(
    region: &Region,
    from: u64,
    deadline: u64,
    frame: u64,
    window: u64,
    gap: u64,
) -> Result<Windows, NotKept> {
    let frequency = svc_rt::counter_frequency();
    while svc_rt::counter() < from {}
    // Skip the window it is in: its start was not seen.
    let mut previous = svc_rt::counter();
    let first = loop {
        let now = svc_rt::counter();
        if now - previous > gap {
            break now;
        }
        if now > deadline {
            return Err(NotKept::NoGap);
        }
        previous = now;
    };
    let mut windows = Windows {
        first,
        count: 0,
        frame: 0,
        switches: 0,
        latest: 0,
        earliest_stamp: i128::MAX,
    };
    let stamp = region.load64(0, Ordering::Relaxed).unwrap_or(0);
    windows
        .take(first, stamp, frame)
        .map_err(|why| NotKept::Order(why, 0))?;
    let tolerance = window / 10;
    let mut run_start = first;
    previous = first;
    while windows.count < FRAMES {
        let now = svc_rt::counter();
        if now - previous > gap {
            let stamp = region.load64(0, Ordering::Relaxed).unwrap_or(0);
            let run = previous - run_start;
            if run + tolerance < window || run > window + tolerance {
                return Err(NotKept::Run(scaled(run, frequency, 1_000_000)));
            }
            let count = windows.count;
            windows
                .take(now, stamp, frame)
                .map_err(|why| NotKept::Order(why, count))?;
            run_start = now;
        }
        if now > deadline {
            let run = now - run_start;
            return Err(if run > window + tolerance {
                NotKept::Run(scaled(run, frequency, 1_000_000))
            } else {
                NotKept::TooFew(windows.count)
            });
        }
        previous = now;
    }
    Ok(windows)
}
