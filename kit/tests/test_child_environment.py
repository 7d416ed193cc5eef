"""The environment ``pulih up`` gives its children: the memory defaults, under the operator's."""

from pulih.kit.local_regency import CHILD_MEMORY_ENV, child_environment


def test_children_load_no_websockets_and_no_column_ranges_by_default() -> None:
    env = child_environment({"PATH": "/usr/bin"})
    assert env["UVICORN_WS"] == "none"
    assert env["PYTHONNODEBUGRANGES"] == "1"
    assert env["PATH"] == "/usr/bin"


def test_an_operators_own_value_wins() -> None:
    env = child_environment({"UVICORN_WS": "websockets"})
    assert env["UVICORN_WS"] == "websockets"
    assert set(CHILD_MEMORY_ENV) <= set(env)
