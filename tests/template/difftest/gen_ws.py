#!/usr/bin/env python3
"""Differential test input: random text and tags with whitespace control (-, +), trim_blocks/lstrip_blocks.
Usage: gen_ws.py SEED COUNT > cases.txt (format of engine_cases.txt)."""
import random, sys
random.seed(int(sys.argv[1]))
texts = ["", " ", "  ", "\n", "\n\n", " \n", "\n  ", "\t", "a", " b ", "c\n", "\n d", "\r\n", " \t\n ", "x  \n  y", "\u3000", "\u00a0\n"]
def tag():
    k = random.random()
    lm = random.choice(["", "", "-", "+"]); rm = random.choice(["", "", "-", "+"])
    if k < 0.3:
        return "{{%s 'v' %s}}" % (random.choice(["", "", "-"]), random.choice(["", "", "-"]))
    if k < 0.45:
        return "{#%s c %s#}" % (lm, rm)
    if k < 0.5:
        return "{%%%s set z = 1 %s%%}" % (lm, rm)
    if k < 0.6:
        return "{%%%s raw %s%%}%s{{ x }}%s{%%%s endraw %s%%}" % (lm, rm, random.choice(texts), random.choice(texts), random.choice(["", "-", "+"]), random.choice(["", "-", "+"]))
    if k < 0.8:
        b = body(2)
        return "{%%%s if true %s%%}%s{%%%s endif %s%%}" % (lm, rm, b, random.choice(["", "-", "+"]), random.choice(["", "-", "+"]))
    b = body(2)
    return "{%%%s for i in [1, 2] %s%%}%s{%%%s endfor %s%%}" % (lm, rm, b, random.choice(["", "-", "+"]), random.choice(["", "-", "+"]))
def body(d):
    out = ""
    for _ in range(random.randint(0, 4)):
        out += random.choice(texts)
        if d > 0 and random.random() < 0.6:
            out += tag() if d > 1 else "{{ 'w' }}"
    return out
cases = []
for i in range(int(sys.argv[2])):
    cases.append(body(3) + random.choice(["", "\n", "\n\n", " "]) + "\n----\n{}")
print("\n====\n".join(cases))
