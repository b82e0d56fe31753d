#!/usr/bin/env python3
"""Regenerates engine_cases.h from engine_cases.txt with Python Jinja2 configured the way
transformers configures it (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
loopcontrols, a generation tag, tojson = json.dumps(ensure_ascii=False), raise_exception,
strftime_now frozen at 2025-03-09 12:00:00). Cases are separated by a line '====', a case's
variables (JSON) follow a line '----'. Python's output is the expected output; a Python
exception means the case must fail (expected NULL).

    python3 tests/template/gen_engine_cases.py tests/template/engine_cases.txt \
        > tests/template/engine_cases.h
"""
import json, sys, datetime
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.ext import loopcontrols
from jinja2 import TemplateError
from jinja2.ext import Extension
from jinja2 import nodes
class Gen(Extension):
    tags={'generation'}
    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(['name:endgeneration'], drop_needle=True)
        return nodes.CallBlock(self.call_method('_r'), [], [], body).set_lineno(lineno)
    def _r(self, caller): return caller()
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, Gen])
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
def raise_exception(m): raise TemplateError(m)
def strftime_now(f): return datetime.datetime(2025,3,9,12,0,0).strftime(f)
env.filters['tojson']=tojson
env.globals['raise_exception']=raise_exception
env.globals['strftime_now']=strftime_now
as_json = len(sys.argv) > 1 and sys.argv[1] == '--json'
if as_json:
    sys.argv.pop(1)
cases = [l for l in open(sys.argv[1]).read().split('\n====\n') if l.strip()]
out=[]
for c in cases:
    tpl, _, vars_ = c.partition('\n----\n')
    v = json.loads(vars_) if vars_.strip() else {}
    try:
        r = env.from_string(tpl).render(**v)
        out.append((tpl, vars_.strip(), r, None))
    except Exception as e:
        out.append((tpl, vars_.strip(), None, type(e).__name__+': '+str(e)))
if as_json:
    for tpl, v, r, e in out:
        print(json.dumps({'tpl': tpl, 'vars': v or '{}', 'expected': r}, ensure_ascii=False))
    sys.exit(0)
def cstr(s):
    o='"'
    for ch in s:
        c=ord(ch)
        if ch=='\\': o+='\\\\'
        elif ch=='"': o+='\\"'
        elif ch=='\n': o+='\\n'
        elif ch=='\t': o+='\\t'
        elif c<0x20 or c==0x7f: o+='\\%03o'%c
        elif ch=='?': o+='\\?'
        else: o+=ch
    return o+'"'
print('/* generated from tests/template/%s by gen_engine_cases.py; expectations are Python Jinja2 3.1.6 */' % sys.argv[1].split('/')[-1])
print('static const engine_case %s[] = {' % (sys.argv[2] if len(sys.argv) > 2 else 'CASES'))
for tpl, v, r, e in out:
    print('    {%s,\n     %s,\n     %s},' % (cstr(tpl), cstr(v or '{}'), cstr(r) if r is not None else 'NULL'))
    if e: print('    /* python: %s */' % e.replace('*/','* /'))
print('};')
