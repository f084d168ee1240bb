#!/usr/bin/env python3
"""Check a rules result against the generator's ground truth (standard library only).

    python3 bench/check_bursts.py DIR/bursts.json RESULT.json

RESULT.json is the document bench/duckdb_rules.py prints (any engine can emit the
same shape: "rule1_hits": [{"identity", "bucket"}...], "rule4_hits":
[{"identity", "source_ip", "bin"}...], times as YYYY-MM-DDTHH:MM:SSZ).

For every injected burst it checks, for tumbling windows:
  rule 1: a hit for (identity, 10-s bucket) exactly where the burst alone has more
          than 5 rule-1-eligible distinct names (aws-cli, not straddle-split), and
          none of its buckets hit where it has 5 or fewer;
  rule 4: a hit for (identity, source IP, 10-min bin) where it has more than 10.
Hits that match no burst are background (listed, not an error). Exit 1 on any miss
or on a rule-1 hit inside a burst that tumbling windows must not see.
"""
import json
import sys


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    truth = json.load(open(argv[0]))["bursts"]
    res = json.load(open(argv[1]))
    r1 = {(h["identity"], h["bucket"]) for h in res.get("rule1_hits", [])}
    r4 = {(h["identity"], h["source_ip"], h["bin"]) for h in res.get("rule4_hits", [])}
    used1, used4 = set(), set()
    problems = 0
    print(f"{'id':>3} {'kind':20} {'dur':>3} {'names':>5}  rule1 (tumbling)         rule4")
    for b in truth:
        ident = b["identity_arn"]
        notes1 = []
        for bk in b["rule1_tumbling_buckets"]:
            key = (ident, bk["bucket"])
            hit = key in r1
            used1.add(key) if hit else None
            want = bk["distinct"] > 5
            if want and not hit:
                notes1.append(f"MISSED {bk['bucket'][11:]}({bk['distinct']})")
                problems += 1
            elif hit and not want:
                # only an error if the burst alone is below threshold AND nothing else explains it
                notes1.append(f"unexpected {bk['bucket'][11:]}({bk['distinct']}+background?)")
                if b["kind"] == "cli_straddle_split":
                    problems += 1
            elif hit:
                notes1.append(f"ok {bk['bucket'][11:]}({bk['distinct']})")
        notes4 = []
        for bn in b["rule4_bins"]:
            key = (ident, b["source_ip"], bn["bin"])
            hit = key in r4
            used4.add(key) if hit else None
            if bn["distinct"] > 10:
                if hit:
                    notes4.append(f"ok {bn['bin'][11:16]}({bn['distinct']})")
                else:
                    notes4.append(f"MISSED {bn['bin'][11:16]}({bn['distinct']})")
                    problems += 1
        print(f"{b['id']:>3} {b['kind']:20} {b['duration_secs']:>3} {len(b['distinct_event_names']):>5}  "
              f"{(' '.join(notes1) or '-'):24} {' '.join(notes4) or '-'}")
    extra1 = sorted(r1 - used1, key=lambda k: (k[1], k[0]))
    extra4 = sorted(r4 - used4, key=lambda k: (k[2], k[0], k[1]))
    print(f"rule1: {len(used1)} hits on bursts, {len(extra1)} background hits")
    for i, bk in extra1:
        print(f"   background rule1 {bk} {i}")
    print(f"rule4: {len(used4)} hits on bursts, {len(extra4)} background hits")
    print("OK" if not problems else f"{problems} PROBLEM(S)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
