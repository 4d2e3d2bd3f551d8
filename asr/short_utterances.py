"""Short everyday utterances made from templates and word lists: what people say to a phone menu or an assistant,
and what books never contain. Digits read one by one, numbers, times, dates, names, single words, menu phrases.

Everything is generated here from a seed, in LibriSpeech normalisation (upper case, numbers spelled out), and none
of it comes from an evaluation set.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
from num2words import num2words
from tqdm import tqdm

from asr.text import normalize_text

DIGITS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
MONTHS = ("JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER", "OCTOBER",
          "NOVEMBER", "DECEMBER")
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
FIRST_NAMES = ("JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID", "ELIZABETH",
               "WILLIAM", "SUSAN", "RICHARD", "JESSICA", "JOSEPH", "SARAH", "THOMAS", "KAREN", "CHRIS", "LISA",
               "DANIEL", "NANCY", "MATTHEW", "BETTY", "ANTHONY", "SANDRA", "MARK", "ASHLEY", "STEVEN", "EMILY",
               "PAUL", "MICHELLE", "ANDREW", "AMANDA", "KEVIN", "MELISSA", "BRIAN", "REBECCA", "GEORGE", "LAURA",
               "EDWARD", "HELEN", "PETER", "ANNA", "SAM", "GRACE", "LUCAS", "SOFIA", "NOAH", "OLIVIA", "AHMED",
               "PRIYA", "WEI", "MARIA", "CARLOS", "FATIMA", "YUKI", "IVAN", "ELENA", "OMAR")
LAST_NAMES = ("SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ", "MARTINEZ",
              "WILSON", "ANDERSON", "TAYLOR", "THOMAS", "MOORE", "JACKSON", "MARTIN", "LEE", "THOMPSON", "WHITE",
              "HARRIS", "CLARK", "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN", "KING", "WRIGHT", "SCOTT",
              "GREEN", "BAKER", "ADAMS", "NELSON", "HILL", "CAMPBELL", "MITCHELL", "ROBERTS", "CARTER", "PHILLIPS")
CITIES = ("LONDON", "BOSTON", "CHICAGO", "DENVER", "SEATTLE", "DALLAS", "PARIS", "BERLIN", "TORONTO", "SYDNEY",
          "MADRID", "DUBLIN", "ATLANTA", "PHOENIX", "MIAMI", "PORTLAND", "AUSTIN", "TOKYO", "DELHI", "ROME")
MENU_WORDS = ("YES", "NO", "OKAY", "STOP", "CANCEL", "HELP", "REPEAT", "OPERATOR", "REPRESENTATIVE", "BILLING",
              "SALES", "SUPPORT", "BALANCE", "PAYMENTS", "AGENT", "CONTINUE", "BACK", "NEXT", "PAUSE", "PLAY",
              "CORRECT", "WRONG", "START", "FINISH", "SUBMIT", "CONFIRM", "UP", "DOWN", "LEFT", "RIGHT", "ON", "OFF",
              "LOUDER", "QUIETER", "HELLO", "GOODBYE", "THANKS", "PLEASE", "MAYBE", "DONE")
MENU_PHRASES = ("PRESS {digit} FOR {item}", "I WANT TO TALK TO {someone}", "CHECK MY {item}", "{item} PLEASE",
                "GO BACK TO THE MAIN MENU", "SAY THAT AGAIN", "REPEAT THE LAST OPTION", "I NEED HELP WITH {item}",
                "TRANSFER ME TO {item}", "MY ACCOUNT NUMBER IS {digits}", "MY PIN IS {digits}",
                "CALL {name}", "CALL {name} ON MOBILE", "TEXT {name} I AM RUNNING LATE", "SET A TIMER FOR {minutes}",
                "WAKE ME UP AT {time}", "BOOK A TABLE FOR {small} AT {time}", "WHAT IS THE WEATHER IN {city}",
                "PLAY SOME MUSIC", "TURN {onoff} THE LIGHTS", "SEND {amount} TO {name}", "MY NAME IS {name} {last}",
                "THE CODE IS {digits}", "FLIGHT {small} TO {city} ON {weekday}", "I WAS BORN ON {date}",
                "MEET ME ON {weekday} AT {time}", "{name} {last}", "{city}", "{weekday} THE {ordinal}",
                "ROOM {number}", "EXTENSION {digits}", "IT COSTS {amount}", "NUMBER {number}")
MENU_ITEMS = ("BILLING", "SALES", "SUPPORT", "MY BALANCE", "MY ORDER", "A REFUND", "TECHNICAL SUPPORT",
              "CUSTOMER SERVICE", "MY APPOINTMENT", "THE PHARMACY", "RESERVATIONS", "LOST CARDS", "PAYMENTS")
SOMEONE = ("A PERSON", "AN AGENT", "SOMEONE", "A REPRESENTATIVE", "THE MANAGER", "THE OPERATOR")
KINDS = ("digits", "number", "time", "date", "name", "word", "menu")


def spoken_number(value: int) -> str:
    return normalize_text(num2words(value).replace("-", " ").replace(",", ""))


def spoken_time(hour: int, minute: int, rng: np.random.Generator) -> str:
    if minute == 0:
        text = f"{spoken_number(hour)} O'CLOCK" if rng.random() < 0.5 else spoken_number(hour)
    elif minute < 10:
        text = f"{spoken_number(hour)} OH {spoken_number(minute)}"
    else:
        text = f"{spoken_number(hour)} {spoken_number(minute)}"
    if rng.random() < 0.3:
        text += " A M" if rng.random() < 0.5 else " P M"
    return text


def spoken_ordinal(value: int) -> str:
    return normalize_text(num2words(value, to="ordinal").replace("-", " "))


def make_utterance(kind: str, rng: np.random.Generator) -> str:
    """One utterance of `kind` (one of KINDS)."""
    pick = lambda items: items[int(rng.integers(len(items)))]  # noqa: E731
    digits = " ".join(pick(DIGITS) for _ in range(int(rng.integers(2, 11))))
    if kind == "digits":
        return digits if rng.random() < 0.9 else digits.replace("ZERO", "OH")
    if kind == "number":
        value = int(rng.choice([rng.integers(0, 100), rng.integers(100, 10000), rng.integers(10000, 10 ** 7)],
                               p=[0.5, 0.35, 0.15]))
        return spoken_number(value)
    if kind == "time":
        return spoken_time(int(rng.integers(1, 13)), int(rng.choice([0, 15, 30, 45, rng.integers(0, 60)])), rng)
    if kind == "date":
        month, day = pick(MONTHS), spoken_ordinal(int(rng.integers(1, 32)))
        text = f"{month} {day}" if rng.random() < 0.6 else f"THE {day} OF {month}"
        year = normalize_text(num2words(int(rng.integers(1950, 2031)), to="year").replace("-", " "))
        return text + (f" {year}" if rng.random() < 0.3 else "")
    if kind == "name":
        return f"{pick(FIRST_NAMES)} {pick(LAST_NAMES)}" if rng.random() < 0.7 else pick(FIRST_NAMES)
    if kind == "word":
        return pick(MENU_WORDS)
    fields = {"digit": pick(DIGITS), "digits": digits, "item": pick(MENU_ITEMS), "someone": pick(SOMEONE),
              "name": pick(FIRST_NAMES), "last": pick(LAST_NAMES), "city": pick(CITIES), "weekday": pick(WEEKDAYS),
              "minutes": f"{spoken_number(int(rng.integers(1, 61)))} MINUTES", "onoff": pick(("ON", "OFF")),
              "time": spoken_time(int(rng.integers(1, 13)), int(rng.choice([0, 15, 30, 45])), rng),
              "small": spoken_number(int(rng.integers(1, 13))), "number": spoken_number(int(rng.integers(1, 1000))),
              "amount": f"{spoken_number(int(rng.integers(1, 500)))} DOLLARS", "date": make_utterance("date", rng),
              "ordinal": spoken_ordinal(int(rng.integers(1, 32)))}
    return pick(MENU_PHRASES).format(**fields)


def short_utterances(count: int, seed: int, show_progress: bool = False) -> list[str]:
    """`count` utterances, the kinds in equal shares, deterministic in `seed`; repeats are kept out. (About four
    minutes a million: spelling numbers out is the slow part.)"""
    rng = np.random.default_rng([seed, 7])
    made, seen = [], set()
    attempts = 0
    with tqdm(total=count, unit=" utt", desc="short utterances", disable=not show_progress) as bar:
        while len(made) < count and attempts < count * 20:
            attempts += 1
            text = make_utterance(KINDS[attempts % len(KINDS)], rng)
            if text not in seen or KINDS[attempts % len(KINDS)] == "word":  # single words may repeat
                seen.add(text)
                made.append(text)
                bar.update()
    return made


def write_short_text(path: str | os.PathLike, count: int, seed: int, show_progress: bool = False) -> int:
    """Write `count` utterances (`short_utterances`), one a line, to a .txt or .txt.gz file, for LM text: the LM
    then knows the sentences people say to a phone menu, which books and talk seldom hold as whole lines. Written
    atomically, so an interrupted run leaves no half file. Returns the number of words."""
    from asr.data import write_bytes_atomically  # (imports torch: only when a file is written)

    lines = short_utterances(count, seed, show_progress)
    body = ("\n".join(lines) + "\n").encode()
    write_bytes_atomically(path, gzip.compress(body, mtime=0) if Path(path).suffix == ".gz" else body)
    return sum(len(line.split()) for line in lines)
