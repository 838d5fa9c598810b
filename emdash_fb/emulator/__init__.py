"""The bundled Firebase emulator: RTDB REST + streaming + security rules, and Auth.

It depends on nothing else in emdash_fb. Layout (state apart from protocol):
values/tree/query hold data, rules/ judges access, database.py is the model,
rtdb_http.py and streams.py speak the wire protocol, auth/ is the Auth emulator,
server.py runs it all.
"""
