"""A LibriSpeech-format speech corpus from text and offline text-to-speech, in many voices and conditions.

    <root>/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac   16 kHz mono
    <root>/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
    <root>/metadata.jsonl     one line per utterance: voice, conditions, duration, text
    <root>/speakers.json      the split plan: which voices speak in which split

The whole corpus is planned up front from the seed (speakers, texts, conditions), so it is deterministic and a
rerun skips every file already written. Dev and test speakers never speak in train, and the three splits draw
their sentences from disjoint parts of the text.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import multiprocessing
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import soundfile

from asr import augment
from asr.audio import SAMPLE_RATE
from asr.errors import AsrError
from asr.text import DEFAULT_TOKENS, normalize_text
from asr.torchaudio_backend import torchaudio
from asr.tts import Voice, check_engine, synthesize

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
DEV_CLEAN_SPLIT = "dev-clean-text"  # LibriSpeech dev-clean transcripts, spoken by dev voices
UTTERANCES_PER_CHAPTER = (8, 20)
SENTENCE_WORDS = (4, 32)  # sentences outside this many words are not used (LibriSpeech utterances are < 35 s)
WORDS_PER_SECOND = 3.5  # speaking rate at rate 1.0, for planning durations (measured on a 9.6 h corpus)

ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
                   "klatt3", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee", "Mario", "Michael", "Mr serious",
                   "adam", "anika", "aunty", "belinda", "boris", "david", "edward", "linda", "max", "norbert",
                   "paul", "quincy", "robert", "steph", "travis", "victor", "zac")
FLITE_VOICES = ("awb", "rms", "slt", "kal16")
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
ENGINE_SHARE = {"espeak-ng": 0.5, "flite": 0.25, "festival": 0.25}  # of utterances in each split

# The 54 Kokoro voice tables (../shared/data/tts/kokoro-voices.npz): US and British English women and men, and 26
# voices of other languages that, given English phonemes, speak English with an accent.
KOKORO_ENGLISH = {
    "af": ("af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nicole", "af_nova",
           "af_river", "af_sarah", "af_sky"),
    "am": ("am_adam", "am_echo", "am_eric", "am_fenrir", "am_liam", "am_michael", "am_onyx", "am_puck", "am_santa"),
    "bf": ("bf_alice", "bf_emma", "bf_isabella", "bf_lily"),
    "bm": ("bm_daniel", "bm_fable", "bm_george", "bm_lewis"),
}
KOKORO_ACCENTED = ("ef_dora", "em_alex", "em_santa", "ff_siwis", "hf_alpha", "hf_beta", "hm_omega", "hm_psi",
                   "if_sara", "im_nicola", "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo",
                   "pf_dora", "pm_alex", "pm_santa", "zf_xiaobei", "zf_xiaoni", "zf_xiaoxiao", "zf_xiaoyi",
                   "zm_yunjian", "zm_yunxi", "zm_yunxia", "zm_yunyang")
KOKORO_SPEAKERS = {"train": 240, "dev": 24, "test": 24}
KOKORO_ACCENTED_SHARE = 0.35  # of speakers whose mix contains an accented voice


@dataclass(frozen=True)
class Speaker:
    id: int
    split: str
    voice: Voice


@dataclass(frozen=True)
class Conditions:
    speed: float = 1.0  # speed perturbation factor
    noise: str = ""  # "", white, pink, brown or babble
    snr_db: float = 0.0
    rt60: float = 0.0  # reverberation time in seconds; 0 = dry
    telephone: bool = False
    gain_db: float = 0.0  # relative to a 0.9 peak
    mic_highpass_hz: float = 0.0  # a cheap microphone's bass cut; 0 = none
    mic_presence_db: float = 0.0  # its peak (or dip) around 3 kHz
    codec: str = ""  # a lossy codec the recording went through (augment.CODECS); "" = none
    codec_quality: float = 0.0  # 0 best to 1 smallest file (opus, mp3)


@dataclass(frozen=True)
class PlannedUtterance:
    split: str
    speaker: int
    chapter: int
    index: int
    text: str
    conditions: Conditions
    utterance_id: str = ""  # LibriSpeech's own id (dev-clean-text); else made from speaker, chapter, index

    @property
    def id(self) -> str:
        return self.utterance_id or f"{self.speaker}-{self.chapter}-{self.index:04d}"

    @property
    def relative_path(self) -> str:
        return f"{self.split}/{self.speaker}/{self.chapter}/{self.id}.flac"


@dataclass(frozen=True)
class CorpusReport:
    utterances: int
    written: int  # this run; the rest already existed
    hours: float  # all utterances
    hours_written: float  # this run
    wall_seconds: float
    failed: int

    @property
    def real_time_factor(self) -> float:
        """Generation time over audio duration for this run (below 1 is faster than real time)."""
        return self.wall_seconds / (self.hours_written * 3600) if self.hours_written else 0.0


def speaker_plan(seed: int, family: str = "classic") -> dict[str, list[Speaker]]:
    """Every voice combination, shuffled and split: 80% train, 10% dev, 10% test, per engine."""
    if family == "kokoro":
        return kokoro_speaker_plan(seed)
    combos = {
        "espeak-ng": [Voice("espeak-ng", v, a, p, r) for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS
                      for p in (0.7, 1.0, 1.35) for r in (0.85, 1.0, 1.15)],
        "flite": [Voice("flite", v, "", p, r) for v in FLITE_VOICES for p in (0.85, 1.0, 1.15)
                  for r in (0.85, 1.0, 1.15)],
        "festival": [Voice("festival", v, "", p, r) for v in FESTIVAL_VOICES for p in (0.92, 1.0, 1.08)
                     for r in (0.85, 1.0, 1.15)],
    }
    rng = np.random.default_rng([seed, 1])
    plan = {split: [] for split in SPLITS}
    for engine, voices in combos.items():
        order = rng.permutation(len(voices))
        held_out = max(1, len(voices) // 10)
        groups = {"dev": order[:held_out], "test": order[held_out:2 * held_out], "train": order[2 * held_out:]}
        if engine == "espeak-ng":  # enough espeak voices: keep the plan small enough to read
            groups["train"] = groups["train"][:240]
        for split, indices in groups.items():
            plan[split].extend(Speaker(0, split, voices[i]) for i in indices)
    first_id = {"train": 1000, "dev": 5000, "test": 7000}
    return {split: [dataclasses.replace(s, id=first_id[split] + i) for i, s in enumerate(speakers)]
            for split, speakers in plan.items()}


def kokoro_speaker_plan(seed: int) -> dict[str, list[Speaker]]:
    """Kokoro speakers: each one voice table or a random mix of two or three, with its own speed. Dev and test each
    hold out one voice of every English group (US/British, women/men) and three accented voices, and their speakers
    mix only those: no train speaker contains a dev or test voice."""
    rng = np.random.default_rng([seed, 5])
    pools = {"train": {"english": [], "accented": []}, "dev": {"english": [], "accented": []},
             "test": {"english": [], "accented": []}}
    for names in KOKORO_ENGLISH.values():
        order = [names[i] for i in rng.permutation(len(names))]
        pools["dev"]["english"].append(order[0])
        pools["test"]["english"].append(order[1])
        pools["train"]["english"].extend(order[2:])
    order = [KOKORO_ACCENTED[i] for i in rng.permutation(len(KOKORO_ACCENTED))]
    pools["dev"]["accented"], pools["test"]["accented"], pools["train"]["accented"] = order[:3], order[3:6], order[6:]
    first_id = {"train": 20000, "dev": 25000, "test": 27000}
    plan = {}
    for split in SPLITS:
        speakers = []
        for number in range(KOKORO_SPEAKERS[split]):
            parts = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
            accented = rng.random() < KOKORO_ACCENTED_SHARE
            names = [str(rng.choice(pools[split]["english"])) for _ in range(parts - accented)]
            names += [str(rng.choice(pools[split]["accented"]))] if accented else []
            names = sorted(set(names))
            weights = rng.dirichlet(np.ones(len(names)))
            name = "+".join(f"{n}:{w:.3f}" for n, w in zip(names, weights / weights.sum()))
            british = all(n[0] == "b" for n in names)
            voice = Voice("kokoro", name, "en-gb" if british else "en-us", 1.0, round(float(rng.uniform(0.85, 1.2)),
                                                                                        2))
            speakers.append(Speaker(first_id[split] + number, split, voice))
        plan[split] = speakers
    return plan


def read_sentences(path: str | os.PathLike, min_words: int = SENTENCE_WORDS[0]) -> tuple[list[str], dict[str, int]]:
    """Normalised sentences of usable length (`min_words` to 32 words) from a (gzipped) text file, one sentence a
    line, and counts of what was normalised or dropped."""
    path = Path(path)
    if not path.is_file():
        raise AsrError(f"{path}: no such text file; pass --text with a file of one sentence per line")
    opener = gzip.open if path.suffix == ".gz" else open
    sentences, counts = [], {"lines": 0, "normalised": 0, "dropped_length": 0, "dropped_empty": 0}
    allowed = set(DEFAULT_TOKENS[1:])
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            counts["lines"] += 1
            raw = " ".join(line.split())
            text = raw if raw and set(raw) <= allowed else normalize_text(raw)
            if text != raw:
                counts["normalised"] += 1
            if not text:
                counts["dropped_empty"] += 1
                continue
            if not min_words <= text.count(" ") + 1 <= SENTENCE_WORDS[1]:
                counts["dropped_length"] += 1
                continue
            sentences.append(text)
    return sentences, counts


def split_of_sentence(sentence: str, seed: int) -> str:
    """Which split may speak `sentence`: a hash decides, so the texts of the splits never overlap."""
    bucket = zlib.crc32(f"{seed}:{sentence}".encode()) % 20
    return "test" if bucket == 0 else "dev" if bucket == 1 else "train"


def mix_sentences(sources: Sequence[Sequence[str]], shares: Sequence[float], seed: int) -> list[str]:
    """As many sentences as the sources allow with source i making up shares[i] of them, drawn at random."""
    shares = np.asarray(shares, dtype=float) / np.sum(shares)
    total = min(len(source) / share for source, share in zip(sources, shares) if share > 0)
    rng = np.random.default_rng([seed, 6])
    mixed = []
    for source, share in zip(sources, shares):
        count = int(total * share)
        mixed.extend(source[i] for i in sorted(rng.choice(len(source), size=count, replace=False)))
    return mixed


def draw_conditions(rng: np.random.Generator, clean: bool = False, recorded: bool = False) -> Conditions:
    """Random recording conditions. `recorded` adds what real recordings have and the classic corpus lacks (a
    microphone's colouring, a lossy codec); the classic corpus leaves it out so that its plan stays as it was."""
    gain_db = round(float(rng.uniform(-18, 0)), 2)
    if clean:
        return Conditions(gain_db=gain_db)
    conditions = _draw_environment(rng, gain_db)
    if not recorded:
        return conditions
    highpass = round(float(rng.uniform(80, 400)), 1) if rng.random() < 0.4 else 0.0
    presence = round(float(rng.uniform(-6, 8)), 1) if rng.random() < 0.4 else 0.0
    codec, quality = "", 0.0
    if rng.random() < 0.35:
        codec = str(rng.choice(["opus", "mp3", "ulaw8k", "gsm8k"], p=[0.4, 0.3, 0.15, 0.15]))
        quality = round(float(rng.uniform(0.2, 1.0)), 2) if codec in ("opus", "mp3") else 0.0
    return dataclasses.replace(conditions, mic_highpass_hz=highpass, mic_presence_db=presence, codec=codec,
                               codec_quality=quality, telephone=conditions.telephone and codec not in ("ulaw8k",
                                                                                                       "gsm8k"))


def _draw_environment(rng: np.random.Generator, gain_db: float) -> Conditions:
    speed = float(rng.choice([0.9, 0.95, 1.05, 1.1])) if rng.random() < 0.5 else 1.0
    noise, snr = "", 0.0
    if rng.random() < 0.5:
        noise = str(rng.choice(["white", "pink", "brown", "babble"], p=[0.2, 0.25, 0.2, 0.35]))
        snr = round(float(rng.uniform(5, 30)), 1)
    rt60 = round(float(rng.uniform(0.2, 0.8)), 2) if rng.random() < 0.3 else 0.0
    return Conditions(speed=speed, noise=noise, snr_db=snr, rt60=rt60, telephone=bool(rng.random() < 0.1),
                      gain_db=gain_db)


def plan_corpus(sentences: Sequence[str], hours: dict[str, float], seed: int,
                dev_clean: Sequence[tuple[str, str]] = (), dev_clean_hours: float = 0.0,
                skip_train_hours: float = 0.0, family: str = "classic") -> list[PlannedUtterance]:
    """Plan utterances until each split's estimated duration reaches its hours. Deterministic in `seed`.

    `skip_train_hours` leaves out the train utterances planned for that many hours, so a corpus whose first part
    was trained on and deleted can grow with new sentences only.
    """
    if skip_train_hours:
        if not 0 < skip_train_hours < hours.get("train", 0.0):
            raise AsrError(f"cannot skip {skip_train_hours} h of {hours.get('train', 0.0)} h of train speech; "
                           "skip more than 0 h and fewer hours than the corpus has")
        # The plan for fewer hours is a prefix of the plan for more, so its ids are exactly the utterances to skip.
        skipped = {u.id for u in plan_corpus(sentences, {"train": skip_train_hours}, seed, family=family)}
        return [u for u in plan_corpus(sentences, hours, seed, dev_clean, dev_clean_hours, family=family)
                if u.id not in skipped]
    speakers = speaker_plan(seed, family)
    engine_share = ENGINE_SHARE if family == "classic" else {"kokoro": 1.0}
    by_split = {split: [] for split in SPLITS}
    for sentence in sentences:
        by_split[split_of_sentence(sentence, seed)].append(sentence)
    plan = []
    for split_number, split in enumerate(SPLITS):
        rng = np.random.default_rng([seed, 2, split_number])
        pool = by_split[split]
        order = rng.permutation(len(pool))
        engines = {e: [s for s in speakers[split] if s.voice.engine == e] for e in engine_share}
        chapters_of = {}
        seconds, next_sentence = 0.0, 0
        while seconds < hours.get(split, 0.0) * 3600:
            if next_sentence >= len(pool):
                raise AsrError(f"not enough text for {hours[split]} h of {split}: {len(pool)} sentences used up; "
                               "pass a larger --text file")
            engine = str(rng.choice(list(engine_share), p=list(engine_share.values())))
            speaker = engines[engine][int(rng.integers(len(engines[engine])))]
            chapters_of[speaker.id] = chapters_of.get(speaker.id, 0) + 1
            chapter = speaker.id * 100 + chapters_of[speaker.id]
            for index in range(int(rng.integers(*UTTERANCES_PER_CHAPTER, endpoint=True))):
                if seconds >= hours[split] * 3600 or next_sentence >= len(pool):
                    break
                text = pool[order[next_sentence]]
                next_sentence += 1
                conditions = draw_conditions(rng, recorded=family != "classic")
                plan.append(PlannedUtterance(split, speaker.id, chapter, index, text, conditions))
                seconds += estimated_seconds(text, speaker.voice, conditions)
    if dev_clean_hours > 0:
        plan.extend(_plan_dev_clean(dev_clean, speakers["dev"], dev_clean_hours, seed, family))
    return plan


def _plan_dev_clean(transcripts, dev_speakers, hours, seed, family) -> list[PlannedUtterance]:
    """LibriSpeech dev-clean's own ids and texts; each LibriSpeech speaker gets one dev voice; clean conditions."""
    plan, seconds = [], 0.0
    for utterance_id, text in transcripts:
        if seconds >= hours * 3600:
            break
        speaker_id, chapter, index = utterance_id.split("-")
        voice = dev_speakers[zlib.crc32(f"{seed}:{speaker_id}".encode()) % len(dev_speakers)].voice
        rng = np.random.default_rng([seed, 3, zlib.crc32(utterance_id.encode())])
        conditions = draw_conditions(rng, clean=True, recorded=family != "classic")
        plan.append(PlannedUtterance(DEV_CLEAN_SPLIT, int(speaker_id), int(chapter), int(index), text, conditions,
                                     utterance_id))
        seconds += estimated_seconds(text, voice, conditions)
    return plan


def read_librispeech_transcripts(path: str | os.PathLike) -> list[tuple[str, str]]:
    """`<speaker>-<chapter>-<utt> TEXT` lines -> (id, text) pairs."""
    pairs = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        utterance_id, _, text = line.strip().partition(" ")
        if utterance_id.count("-") != 2 or not text:
            raise AsrError(f"{path}:{number}: expected '<speaker>-<chapter>-<utt> TEXT'")
        pairs.append((utterance_id, normalize_text(text)))
    return pairs


def estimated_seconds(text: str, voice: Voice, conditions: Conditions) -> float:
    return (text.count(" ") + 1) / (WORDS_PER_SECOND * voice.rate * conditions.speed) + 0.3


def render(utterance: PlannedUtterance, voice: Voice, babble_voices: Sequence[Voice], babble_texts: Sequence[str],
           seed: int) -> np.ndarray:
    """Speak one planned utterance in its voice and conditions -> 16 kHz float32 samples."""
    rng = np.random.default_rng([seed, 4, zlib.crc32(utterance.id.encode())])
    samples = synthesize(voice, utterance.text)
    samples = samples * (0.9 / (np.abs(samples).max() + 1e-9))
    c = utterance.conditions
    samples = augment.change_speed(samples, c.speed)
    if c.rt60:
        samples = augment.reverberate(samples, c.rt60, rng)
    if c.noise == "babble":
        talkers = [synthesize(babble_voices[int(rng.integers(len(babble_voices)))],
                              babble_texts[int(rng.integers(len(babble_texts)))]) for _ in range(3)]
        noise = np.zeros(len(samples), dtype=np.float32)
        for talker in talkers:
            offset = int(rng.integers(0, max(1, len(talker) - len(samples)) + 1)) if len(talker) > len(samples) else 0
            piece = np.resize(talker[offset:], len(samples))  # loops a short talker
            noise += piece / (piece.std() + 1e-9)
        samples = augment.add_noise(samples, noise, c.snr_db)
    elif c.noise:
        samples = augment.add_noise(samples, augment.coloured_noise(len(samples), c.noise, rng), c.snr_db)
    if c.telephone:
        samples = augment.telephone(samples)
    if c.mic_highpass_hz or c.mic_presence_db:
        samples = augment.colour_microphone(samples, c.mic_highpass_hz, c.mic_presence_db)
    if c.codec:  # at the corpus's 0.9 peak first, so the encoder sees no clipping
        samples = augment.through_codec(samples * (0.9 / (np.abs(samples).max() + 1e-9)), c.codec, c.codec_quality)
    samples = samples * (0.9 / (np.abs(samples).max() + 1e-9))
    return augment.apply_gain(samples, c.gain_db)[0]


# Worker processes get the lookup tables once, through the pool initializer.
_worker_context: dict = {}


def _init_worker(context: dict) -> None:
    import torch

    torch.set_num_threads(1)  # parallelism comes from the processes
    logging.getLogger("phonemizer").setLevel(logging.ERROR)  # Kokoro's phonemizer warns on every mid-word pause
    _worker_context.update(context)


def _write_one(utterance: PlannedUtterance) -> tuple[str, float, str]:
    """Render and write one file atomically -> (id, seconds, error or "")."""
    context = _worker_context
    path = Path(context["root"]) / utterance.relative_path
    voice = context["voices"][(utterance.split, utterance.speaker)]
    try:
        samples = render(utterance, voice, context["babble_voices"][utterance.split],
                         context["babble_texts"][utterance.split], context["seed"])
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        soundfile.write(temporary, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        os.replace(temporary, path)
        return utterance.id, len(samples) / SAMPLE_RATE, ""
    except Exception as error:  # one failed utterance must not stop a corpus of thousands; it is reported
        return utterance.id, 0.0, f"{type(error).__name__}: {error}"


def voice_table(plan: Iterable[PlannedUtterance], seed: int, family: str = "classic") -> dict[tuple[str, int], Voice]:
    speakers = speaker_plan(seed, family)
    table = {(s.split, s.id): s.voice for split in SPLITS for s in speakers[split]}
    dev_voices = [s.voice for s in speakers["dev"]]
    for utterance in plan:
        if utterance.split == DEV_CLEAN_SPLIT:
            table[(utterance.split, utterance.speaker)] = dev_voices[
                zlib.crc32(f"{seed}:{utterance.speaker}".encode()) % len(dev_voices)]
    return table


def write_corpus(root: str | os.PathLike, plan: Sequence[PlannedUtterance], seed: int, jobs: int | None = None,
                 show_progress: bool = True, family: str = "classic") -> CorpusReport:
    """Write every planned utterance not yet on disk, then the transcripts, metadata and speaker plan."""
    from tqdm import tqdm

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    voices = voice_table(plan, seed, family)
    for engine in sorted({voice.engine for voice in voices.values()}):
        check_engine(engine)
    for voice in {v for v in voices.values() if v.engine == "festival"}:
        check_engine("festival", voice.name)
    torchaudio()  # every voice not at 16 kHz is resampled: fail here, not once for each of thousands of utterances
    # Babble is three talkers per noisy utterance: espeak-ng and flite voices of the same split speak it, fast.
    speakers = speaker_plan(seed)
    babble_voices = {split: [s.voice for s in speakers[split] if s.voice.engine != "festival"] for split in SPLITS}
    babble_voices[DEV_CLEAN_SPLIT] = babble_voices["dev"]
    babble_texts = {split: [u.text for u in plan if u.split == split][:500] or ["THE SOUND OF VOICES"]
                    for split in (*SPLITS, DEV_CLEAN_SPLIT)}
    todo = [u for u in plan if not (root / u.relative_path).exists()]
    context = {"root": str(root), "voices": voices, "babble_voices": babble_voices, "babble_texts": babble_texts,
               "seed": seed}
    started = time.perf_counter()
    seconds_written, failures = 0.0, []
    jobs = jobs or os.cpu_count() or 1
    with multiprocessing.get_context("fork").Pool(jobs, initializer=_init_worker, initargs=(context,)) as pool:
        results = pool.imap_unordered(_write_one, todo, chunksize=4)
        for utterance_id, seconds, error in tqdm(results, total=len(todo), unit="utt", desc="synthesising",
                                                 disable=not show_progress, smoothing=0.05):
            seconds_written += seconds
            if error:
                failures.append(f"{utterance_id}: {error}")
    wall = time.perf_counter() - started
    for failure in failures[:10]:
        log.warning("failed: %s", failure)
    total_seconds = _write_text_files(root, plan, voices, seed, family)
    return CorpusReport(len(plan), len(todo) - len(failures), total_seconds / 3600, seconds_written / 3600, wall,
                        len(failures))


def _write_text_files(root: Path, plan: Sequence[PlannedUtterance], voices, seed: int, family: str) -> float:
    chapters: dict[Path, list[PlannedUtterance]] = {}
    total_seconds = 0.0
    metadata_path = root / "metadata.jsonl"
    with open(metadata_path.with_suffix(".tmp"), "w", encoding="utf-8") as metadata:
        for utterance in plan:
            path = root / utterance.relative_path
            if not path.exists():
                continue
            chapters.setdefault(path.parent, []).append(utterance)
            info = soundfile.info(str(path))
            seconds = info.frames / info.samplerate
            total_seconds += seconds
            voice = voices[(utterance.split, utterance.speaker)]
            entry = {"id": utterance.id, "split": utterance.split, "path": utterance.relative_path,
                     "speaker": utterance.speaker, "duration": round(seconds, 3), **dataclasses.asdict(voice),
                     **dataclasses.asdict(utterance.conditions), "text": utterance.text}
            metadata.write(json.dumps(entry) + "\n")
    os.replace(metadata_path.with_suffix(".tmp"), metadata_path)
    for folder, utterances in chapters.items():
        speaker, chapter = utterances[0].speaker, utterances[0].chapter
        lines = "".join(f"{u.id} {u.text}\n" for u in sorted(utterances, key=lambda u: u.id))
        (folder / f"{speaker}-{chapter}.trans.txt").write_text(lines, encoding="utf-8")
    plan_on_disk = {split: [{"speaker": s.id, **dataclasses.asdict(s.voice)} for s in speakers]
                    for split, speakers in speaker_plan(seed, family).items()}
    (root / "speakers.json").write_text(json.dumps({"seed": seed, "family": family, "splits": plan_on_disk},
                                                   indent=1) + "\n")
    return total_seconds


def summarize_metadata(path: str | os.PathLike) -> str:
    """A readable breakdown of a corpus's metadata: hours per split, engine and condition."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    lines = []
    for split in sorted({r["split"] for r in rows}):
        part = [r for r in rows if r["split"] == split]
        hours = sum(r["duration"] for r in part) / 3600
        lines.append(f"{split}: {len(part)} utterances, {hours:.2f} h, {len({r['speaker'] for r in part})} speakers")
        for label, key in (("engine", "engine"), ("noise", "noise")):
            counts = {}
            for r in part:
                counts[r[key] or "none"] = counts.get(r[key] or "none", 0) + r["duration"] / 3600
            lines.append(f"  {label}: " + ", ".join(f"{k} {v:.2f} h" for k, v in sorted(counts.items())))
        lines.append(f"  reverberant {sum(r['rt60'] > 0 for r in part)}, telephone {sum(r['telephone'] for r in part)}"
                     f", speed-perturbed {sum(r['speed'] != 1.0 for r in part)} of {len(part)}")
        if any(r.get("codec") or r.get("mic_highpass_hz") or r.get("mic_presence_db") for r in part):
            codecs = {}
            for r in part:
                codecs[r["codec"] or "none"] = codecs.get(r["codec"] or "none", 0) + 1
            lines.append("  codec: " + ", ".join(f"{k} {v}" for k, v in sorted(codecs.items())) +
                         f"; microphone-coloured {sum(bool(r['mic_highpass_hz'] or r['mic_presence_db']) for r in part)}")
    return "\n".join(lines)


def speak_to_manifest(folder: str | os.PathLike, sentences: Sequence[str], voices: Sequence[Voice]) -> Path:
    """Speak each sentence (in turn, in the next of `voices`) clean into `folder`, with a manifest.jsonl beside.
    For demos and tests: a handful of clean utterances without a whole corpus plan."""
    from asr.data import Utterance, write_manifest

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    utterances = []
    for i, sentence in enumerate(sentences):
        text = normalize_text(sentence)
        samples = synthesize(voices[i % len(voices)], text)
        path = folder / f"utt{i:03d}.flac"
        soundfile.write(path, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        utterances.append(Utterance(f"utt{i:03d}", str(path), round(len(samples) / SAMPLE_RATE, 3), text))
    manifest = folder / "manifest.jsonl"
    write_manifest(manifest, utterances)
    return manifest
