"""How much of the test set's secret a team can read from the leaderboard before finalize.

A workspace of the bundled chips (``init_workspace``, daily quota 10000) is made with
``feedback="score"`` (the default: the primary metric and its interval, rounded) and with
``feedback="ladder"``, served in-process (``TestClient`` over ``make_app``); one team per attack
uploads through ``POST /api/submissions`` with its bearer token and reads the reply,
``/submissions/ID.json`` and ``/teams/NAME.json``.  The attacks, by a team with no model:

1. pack: the log-loss packing attack moved to what is shown now: ``--pack-size`` fresh chips
   an upload at 0.5 plus distinct tiny offsets, the rest at 0.5 (Public ships learned so far at
   1.0, which lets the Ladder move).  The AUC is then an exact function of the probed chips'
   Public ships a, Public no-ships b and ship-above-no-ship pairs I; a forward-backward pass
   over (a, b, I) gives each chip's posterior given the shown value (or that it did not move).
2. flip: all chips at 0.5, then one an upload at the top: the AUC moves by +1/(2P) for a Public
   ship, -1/(2N) for a Public no-ship, 0 for a Private chip; the interval is read as well.
3. confusion: all chips at 0.0, then one an upload at 1.0: a confusion count or an accuracy
   anywhere in the reply or the pages would tell its label.

A chip's answer is Private, Public ship or Public no-ship.  Reported: uploads, chips guessed
(most likely answer), right (against private/solution.csv, read as the organiser), what the
blind guess (Private) gets on them, bits (sum of log2 posterior/prior of the true answers) and
labels per upload (bits / the entropy of one answer / uploads).  The attacker is given the
Public counts P and N, which a real one must estimate: upper bounds for these attacks.  Goal:
at most about one label per upload by default; under the Ladder fewer, for every attack.  Then
every route a team can reach before finalize is scanned for other metrics, confusion counts,
ROC curves, Private fields and numbers with more decimals than the rules show.

    .venv/bin/python benchmarks/bench_probe.py [--uploads 40] [--pack-size 16] [--seed 0]
        [--precision DECIMALS] [--modes score,ladder]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOAL = 1.0  # labels per upload under the default feedback
CONFUSION = ("tn", "fp", "fn", "tp", "n_positive")
_NUMBER = re.compile(r"-?\d+\.\d+")


@dataclass
class Truth:
    """The organiser's answer for each test chip (0 Private, 1 Public ship, 2 Public no-ship) and its prior."""

    ids: np.ndarray
    answer: np.ndarray
    P: int
    N: int

    @classmethod
    def read(cls, ws) -> "Truth":
        sol = ws.load_solution()
        answer = np.where(sol.usage == "Public", np.where(sol.y_true == 1, 1, 2), 0)
        return cls(ids=sol.ids, answer=answer, P=int((answer == 1).sum()), N=int((answer == 2).sum()))

    @property
    def prior(self) -> np.ndarray:
        n = len(self.ids)
        return np.array([1 - (self.P + self.N) / n, self.P / n, self.N / n])

    @property
    def entropy(self) -> float:
        """Bits in one chip's answer."""
        return float(-(self.prior * np.log2(self.prior)).sum())


@dataclass
class Outcome:
    """What one attack learned: its uploads and a posterior over the three answers for each chip it probed."""

    attack: str
    mode: str
    uploads: int = 0
    posteriors: dict = field(default_factory=dict)

    def summary(self, truth: Truth) -> dict:
        idx = np.array(sorted(self.posteriors), dtype=int)
        q = np.array([self.posteriors[i] for i in idx]).reshape(-1, 3)
        true = truth.answer[idx]
        bits = float(np.sum(np.log2(np.maximum(q[np.arange(len(idx)), true], 1e-3) / truth.prior[true])))
        return dict(attack=self.attack, mode=self.mode, uploads=self.uploads, guessed=len(idx),
                    right=int((q.argmax(1) == true).sum()), blind=int((true == 0).sum()), bits=bits,
                    per_upload=bits / truth.entropy / max(self.uploads, 1))


# -- the decoder -----------------------------------------------------------------------------

def auc_table(k: int, p1: int, P: int, N: int) -> np.ndarray:
    """AUC of every (a, b, I) when k probed chips sit above a tied rest and p1 known ships sit on top."""
    a = np.arange(k + 1)[:, None, None]
    b = np.arange(k + 1)[None, :, None]
    pairs = np.arange(k * k // 4 + 1)[None, None, :]
    return (p1 * N + pairs + a * (N - b) + 0.5 * (P - p1 - a) * (N - b)) / (P * N)


def decode(k: int, prior: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Posterior (k, 3) of probed chips, highest score first, given the allowed final (a, b, I) states."""
    shape = allowed.shape
    fwd = [np.zeros(shape)]
    fwd[0][0, 0, 0] = 1.0
    for _ in range(k):
        fwd.append(_step(fwd[-1], prior))
    back = allowed.astype(float)
    post = np.zeros((k, 3))
    for j in range(k - 1, -1, -1):
        f = fwd[j]
        post[j, 0] = (f * back).sum() * prior[0]
        post[j, 1] = (f[:-1] * back[1:]).sum() * prior[1]
        post[j, 2] = sum((f[a, :-1, : shape[2] - a] * back[a, 1:, a:]).sum() for a in range(shape[0])) * prior[2]
        back = _step(back, prior, back=True)
    total = post.sum(1, keepdims=True)
    return np.where(total > 0, post / np.where(total > 0, total, 1), prior)


def _step(f: np.ndarray, prior: np.ndarray, back: bool = False) -> np.ndarray:
    """One more chip (Private; ship: a + 1; no-ship: b + 1, I + a), forwards or, for ``back``, backwards."""
    g, d = f * prior[0], f.shape[2]
    if back:
        g[:-1] += f[1:] * prior[1]
        for a in range(f.shape[0]):
            g[a, :-1, : d - a] += f[a, 1:, a:] * prior[2]
    else:
        g[1:] += f[:-1] * prior[1]
        for a in range(f.shape[0]):
            g[a, 1:, a:] += f[a, :-1, : d - a] * prior[2]
    return g


# -- the team's side: uploads and what it is shown ------------------------------------------

class Team:
    """A team on the server: uploads with its token and reads back what it is shown."""

    def __init__(self, client, name: str, token: str, truth: Truth, mode: str, precision: int, step: float):
        self.client, self.name, self.token, self.truth = client, name, token, truth
        self.mode, self.half, self.step = mode, 0.5 * 10.0 ** -precision, step
        self.standing: float | None = None  # the Ladder's shown value before this upload
        self.standing_interval: tuple | None = None
        self.leaky = False  # an unmoved Ladder reply carried an interval that is not the standing one's
        self.seen: list[tuple[str, object]] = []  # every JSON answer, for the scan
        self.uploads, self.last_file = 0, b""

    def upload(self, y_proba: np.ndarray) -> dict:
        """Upload a submission; return the shown ``roc_auc`` fields and whether they belong to this upload."""
        self.last_file = ("id,ship\n" + "".join(f"{i},{p:.10g}\n" for i, p in zip(self.truth.ids, y_proba))).encode()
        r = self.client.post("/api/submissions", files={"file": ("probe.csv", self.last_file, "text/csv")},
                             headers={"Authorization": f"Bearer {self.token}"})
        if r.status_code != 201:
            raise SystemExit(f"upload refused: {r.status_code} {r.text}")
        reply, self.uploads = r.json(), self.uploads + 1
        own = {"Authorization": f"Bearer {self.token}"}  # a team's history and submissions are its own to read
        page = self.client.get(f"/submissions/{reply['id']}.json", headers=own).json()
        team = self.client.get(f"/teams/{self.name}.json", headers=own).json()
        docs = [("POST /api/submissions", reply), (f"/submissions/{reply['id']}.json", page),
                (f"/teams/{self.name}.json", team)]
        self.seen += docs
        if page["public"] != reply["public"]:
            raise SystemExit(f"submission {reply['id']}: the page shows {page['public']}, the reply {reply['public']}")
        return {**self._read(reply["public"]), "docs": [doc for _, doc in docs]}

    def _read(self, shown: dict) -> dict:
        score, interval = shown.get("roc_auc"), (shown.get("roc_auc_low"), shown.get("roc_auc_high"))
        moved = self.mode == "score" or self.standing is None or score != self.standing
        if not moved and interval != self.standing_interval:
            self.leaky = True
        own_interval = moved or self.leaky
        before = self.standing
        if moved:
            self.standing, self.standing_interval = score, interval
        return dict(score=score, moved=moved, before=before, interval=interval if own_interval else None)

    def allowed(self, seen: dict, aucs: np.ndarray) -> np.ndarray:
        """Which AUC values agree with what was shown."""
        if seen["moved"]:
            close = np.abs(aucs - seen["score"]) <= self.half + 1e-9
            return close if seen["before"] is None or self.mode == "score" else close & (aucs > seen["before"] + self.step)
        return aucs <= seen["before"] + self.step + 1e-9


# -- the attacks ----------------------------------------------------------------------------

def attack_pack(team: Team, chips, uploads: int, k: int) -> Outcome:
    """k fresh chips an upload at 0.5 plus distinct offsets above a tied rest; learned ships on top."""
    truth, posteriors, known = team.truth, {}, []
    for _ in range(uploads):
        probe = [next(chips) for _ in range(k)]
        y = np.full(len(truth.ids), 0.5)
        y[known] = 1.0
        y[probe] = 0.5 + (k - np.arange(k)) * 1e-4
        seen = team.upload(y)
        post = decode(k, truth.prior, team.allowed(seen, auc_table(k, len(known), truth.P, truth.N)))
        posteriors.update(zip(probe, post))
        known += [c for c, q in zip(probe, post) if q[1] >= 0.99]
    return Outcome("pack", team.mode, team.uploads, posteriors)


def attack_flip(team: Team, chips, uploads: int) -> Outcome:
    """All chips at 0.5, then one chip an upload at the top; read the shown AUC and its interval."""
    truth, posteriors = team.truth, {}
    for c, seen in _one_at_a_time(team, chips, uploads, low=0.5):
        if c is None:
            continue
        q = decode(1, truth.prior, team.allowed(seen, auc_table(1, 0, truth.P, truth.N)))[0]
        if seen["interval"] is not None and None not in seen["interval"]:
            lo, hi = seen["interval"]  # all others tied: the interval is [0.5, 0.5] unless the chip is Public
            q2 = q * np.array([lo == hi == 0.5, lo >= 0.5 < hi, lo < 0.5 >= hi])
            q = q2 / q2.sum() if q2.sum() > 0 else q
        posteriors[c] = q
    return Outcome("flip", team.mode, team.uploads, posteriors)


def attack_confusion(team: Team, chips, uploads: int) -> Outcome:
    """All chips at 0.0, then one an upload at 1.0; difference any confusion count or accuracy shown."""
    posteriors, before = {}, None
    for c, seen in _one_at_a_time(team, chips, uploads, low=0.0):
        after = _find(seen["docs"])
        if c is None:
            before = after
        elif "tp" in after and "fp" in after:  # one more tp: a ship; one more fp: a no-ship; neither: Private
            posteriors[c] = np.eye(3)[1 if after["tp"] > before["tp"] else 2 if after["fp"] > before["fp"] else 0]
        elif "accuracy" in after:  # up: a ship; down: a no-ship; same: Private
            d = after["accuracy"] - before["accuracy"]
            posteriors[c] = np.eye(3)[1 if d > 0 else 2 if d < 0 else 0]
    return Outcome("confusion", team.mode, team.uploads, posteriors)


def _one_at_a_time(team: Team, chips, uploads: int, low: float):
    """A first upload with every chip at ``low`` (yields chip None), then one chip an upload at 1.0."""
    base = np.full(len(team.truth.ids), low)
    yield None, team.upload(base)
    for _ in range(uploads - 1):
        c = next(chips)
        y = base.copy()
        y[c] = 1.0
        yield c, team.upload(y)


def _items(obj):
    """Every (key, value) of every dict nested in ``obj``, and (None, leaf) for every other value."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield key, value
            yield from _items(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _items(value)
    else:
        yield None, obj


def _find(docs, keys=("tp", "fp", "accuracy")) -> dict:
    """The first value of each of ``keys`` anywhere in the documents (none when nothing carries them)."""
    found = {}
    for key, value in _items(docs):
        if key in keys and value is not None:
            found.setdefault(key, value)
    return found


# -- the scan of every route a team can reach -------------------------------------------------

def forbidden_keys(primary: str) -> set[str]:
    """Keys that must not hold a value before finalize: other metrics, confusion counts, curves, Private."""
    from competition.scoring import METRICS

    others = {f"{m}{s}" for m in METRICS if m != primary for s in ("", "_low", "_high")}
    return others | set(CONFUSION) | {"roc", "private", "private_score", "private_low", "private_high"}


def scan_json(where: str, doc, banned: set[str], precision: int, keys: set[str], problems: list[str]) -> None:
    """Record every key; flag a banned key holding a value, and a float with more decimals than shown."""
    for key, value in _items(doc):
        keys.add(key)
        if key in banned and value is not None:
            problems.append(f"{where}: {key}={value!r} before finalize")
        if key is None and isinstance(value, float) and round(value, precision) != value:
            problems.append(f"{where}: {value!r} has more than {precision} decimals")


def scan_html(where: str, html: str, primary: str, precision: int, problems: list[str]) -> None:
    """Flag numbers with more decimals than shown, and metric or confusion cells that are not 'n/a'."""
    svg_titles = " ".join(re.findall(r"<title>(.*?)</title>", html))
    text = re.sub(r"<(svg|pre)\b.*?</\1>", " ", html, flags=re.S)  # chart coordinates; the example file
    for match in _NUMBER.finditer(re.sub(r"<[^>]+>", " ", text) + " " + svg_titles):
        if round(float(match.group(0)), precision) != float(match.group(0)):  # 0.5100 is 0.51 written long
            problems.append(f"{where}: {match.group(0)} has more than {precision} decimals")
    for name, value in re.findall(r"<td>(\w+) <span class=\"dir\">.*?</span></td>\s*<td class=\"n\">([^<]*)</td>", html):
        if name != primary and value.strip() != "n/a":
            problems.append(f"{where}: metric {name} shown as {value.strip()}")
    if 'class="chart-box roc"' in html:
        problems.append(f"{where}: a ROC curve before finalize")
    confusion = re.search(r'<table class="confusion">(.*?)</table>', html, flags=re.S)
    for value in re.findall(r'<td class="n">([^<]*)</td>', confusion.group(1) if confusion else ""):
        if value.strip() != "n/a":
            problems.append(f"{where}: confusion count {value.strip()}")


def scan_routes(client, teams: list[Team], primary: str, precision: int) -> dict:
    """Every JSON and page a team can reach before finalize, and every upload reply."""
    banned, keys, problems = forbidden_keys(primary), set(), []
    status = client.get("/leaderboard.json?board=private").status_code
    if status != 403:
        problems.append(f"/leaderboard.json?board=private answered {status} before finalize")
    # Each team reads its own history and submissions (with its token); anyone reads the boards and
    # the other teams' pages (their standing, no history).
    own = {t.name: {"Authorization": f"Bearer {t.token}"} for t in teams}
    ids = {t.name: [s["id"] for s in client.get(f"/teams/{t.name}.json", headers=own[t.name]).json()["submissions"]]
           for t in teams}
    reads = [(p, None) for p in ("/leaderboard.json", "/leaderboard.json?board=public")]
    reads += [(f"/teams/{t.name}.json", who) for t in teams for who in (None, t.name)]
    reads += [(f"/submissions/{i}.json", t.name) for t in teams for i in ids[t.name]]
    documents = [doc for team in teams for doc in team.seen]
    documents += [(p, client.get(p, headers=own.get(who)).json()) for p, who in reads]
    for where, doc in documents:
        scan_json(where, doc, banned, precision, keys, problems)
    pages = [(p, None) for p in ("/", "/?board=public", "/submit")]
    pages += [(f"/teams/{t.name}", who) for t in teams for who in (None, t.name)]
    pages += [(f"/submissions/{i}", t.name) for t in teams for i in ids[t.name]]
    for path, who in pages:
        scan_html(path, client.get(path, headers=own.get(who)).text, primary, precision, problems)
    form = client.post("/submit", data={"token": teams[0].token}, files={"file": ("form.csv", teams[0].last_file)})
    if form.status_code != 201:
        problems.append(f"POST /submit: the form upload answered {form.status_code}, so its page was not scanned")
    scan_html("POST /submit", form.text, primary, precision, problems)
    metric_keys = sorted(k for k in keys - {None} if k in banned or k.startswith(primary))
    return dict(n_json=len(documents), n_html=len(pages) + 1, metric_keys=metric_keys, problems=problems)


# -- the run ----------------------------------------------------------------------------------

def run_mode(mode: str, args, root: Path) -> tuple[list[dict], dict, Truth]:
    """One workspace under ``feedback=mode``: the three attacks, then the scan."""
    from fastapi.testclient import TestClient

    from competition.create import init_workspace
    from leaderboard.store import Store
    from leaderboard.web import make_app

    settings = dict(daily_quota=10_000, feedback=mode)
    if args.precision is not None:
        settings["public_precision"] = args.precision
    ws = init_workspace(root / mode, seed=args.seed, **settings)
    truth, rules = Truth.read(ws), ws.rules
    with Store.open(ws.store_url, rules) as store:
        tokens = {name: store.add_team(f"probe-{name}") for name in ("pack", "flip", "confusion")}
    order = np.random.default_rng(args.seed).permutation(len(truth.ids))  # the attacker's order of the test ids
    with TestClient(make_app(ws, revision_ttl=0)) as client:
        teams = {name: Team(client, f"probe-{name}", token, truth, mode, rules.public_precision, rules.ladder_step)
                 for name, token in tokens.items()}
        outcomes = [
            attack_pack(teams["pack"], iter(order), min(args.uploads, len(order) // args.pack_size), args.pack_size),
            attack_flip(teams["flip"], iter(order), args.uploads),
            attack_confusion(teams["confusion"], iter(order), min(args.uploads, 5)),
        ]
        scan = scan_routes(client, list(teams.values()), rules.metric, rules.public_precision)
    return [o.summary(truth) for o in outcomes], scan, truth


def verdict(rows: list[dict]) -> dict[str, tuple[float, bool]]:
    """Per mode: the best attack's labels per upload and whether the goal is met."""
    per = {(r["mode"], r["attack"]): r["per_upload"] for r in rows}
    out = {}
    for mode in dict.fromkeys(r["mode"] for r in rows):
        mine = {a: v for (m, a), v in per.items() if m == mode}
        met = max(mine.values()) <= GOAL * 1.1  # "about one": a single-chip flip reads exactly one
        if mode == "ladder":
            met = met and all(v < per.get(("score", a), GOAL) or v == 0 for a, v in mine.items())
        out[mode] = (max(mine.values()), met)
    return out


def print_report(rows: list[dict], scans: dict, truth: Truth, seconds: float) -> None:
    print(f"\nPublic part: P={truth.P} ships, N={truth.N} no-ships of {len(truth.ids)} test chips; "
          f"one chip's answer (Private / Public ship / Public no-ship) holds {truth.entropy:.3f} bits\n")
    print("| attack | feedback | uploads | chips guessed | right | blind guess right | right - blind | bits "
          "| labels / upload | ratio to goal |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['attack']} | {r['mode']} | {r['uploads']} | {r['guessed']} | {r['right']} | {r['blind']} "
              f"| {r['right'] - r['blind']} | {r['bits']:.1f} | {r['per_upload']:.2f} | {r['per_upload'] / GOAL:.2f}x |")
    print("\ngoal: at most about 1 label per upload under the default feedback; under the Ladder fewer, for every attack")
    for mode, (best, met) in verdict(rows).items():
        print(f"  {mode}: best attack {best:.2f} labels per upload, ratio to goal {best / GOAL:.2f}x: "
              f"{'met' if met else 'NOT met'}")
    for mode, scan in scans.items():
        print(f"scan ({mode}): {scan['n_json']} JSON answers and {scan['n_html']} pages; metric keys seen: "
              f"{', '.join(scan['metric_keys'])}; problems: {len(scan['problems'])}")
        for problem in scan["problems"][:10]:
            print(f"  {problem}")
    print(f"\n{seconds:.0f} s in all")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=40, help="uploads per attack and feedback mode (>= 2)")
    parser.add_argument("--pack-size", type=int, default=16, help="chips probed by one packed upload")
    parser.add_argument("--seed", type=int, default=0, help="seed of the workspace and of the attacker's order")
    parser.add_argument("--precision", type=int, default=None, help="decimals shown (default: the rules')")
    parser.add_argument("--modes", default="score,ladder", help="feedback modes to attack, comma-separated")
    args = parser.parse_args(argv)
    if args.uploads < 2 or args.pack_size < 1:
        parser.error("--uploads must be >= 2 and --pack-size >= 1")
    start, rows, scans = time.perf_counter(), [], {}
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        for mode in args.modes.split(","):
            mode_rows, scans[mode], truth = run_mode(mode, args, Path(tmp))
            rows += mode_rows
            print(f"{mode}: done after {time.perf_counter() - start:.0f} s", file=sys.stderr)
    print_report(rows, scans, truth, time.perf_counter() - start)
    return 1 if any(scan["problems"] for scan in scans.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
