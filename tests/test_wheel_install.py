"""The README, followed by a newcomer: the wheels in a fresh virtualenv and a new project.

The wheels are built with the README's own command (``install-wheels``). A plain
install, as a production host has it: the README's install line in a virtualenv that
sees only the app's own dependencies (no drf-spectacular, Celery or simulator), the
README's settings and ``urls.py``; ``check`` names the example's missing key file; with
the shop's keys in place, ``migrate``, ``check`` and a request to the API.

First the production install: the main wheel alone, no extras, must carry no WeChat Pay
stand-in (no ``wxpay_simulator``, no ``simulator``/``testing`` package, no
``wxpay-simulator`` script). Then the README's flow: both wheels (the app and
``django-wxpay-profitsharing-simulator``, built from ``simulator/``) into a new
virtualenv, a project created with
``django-admin startproject``, applies the README's configuration snippets *as written*
(read from README.md by their ``<!-- readme-snippet: NAME -->`` markers, so a README that
drifts fails here), migrates, checks (warnings are errors: an unknown key is W002),
starts ``wxpay-simulator`` from the virtualenv, seeds the sharing order with the README's
own request body, and creates and submits a return with the README's code. Then the
schema snippet's ``/api/docs/`` must load its scripts from the project's static files.

Why a virtualenv that sees this one's site-packages: the dependencies (Django, DRF,
cryptography...) are the same distributions either way, and installing them again from
an index would make the test slow and need the network. The package under test is
the one thing installed into it, from the wheel, and the test asserts that it is the
wheel's copy that runs (not this checkout, which is kept off the path).

Slow (about 15 s, half of it building the wheels); runs in the SQLite pass only.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import requests
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from django_wxpay_profitsharing import __version__

ROOT = Path(__file__).resolve().parent.parent
SIMULATOR_ROOT = ROOT / "simulator"
SNIPPET = re.compile(r"<!-- readme-snippet: ([\w-]+) -->\n```[a-z]*\n(.*?)\n```", re.S)

pytest.importorskip(
    "drf_spectacular_sidecar", reason="the README's schema snippet needs drf-spectacular-sidecar"
)
pytestmark = [
    pytest.mark.slow,
    # the wheel is the same whatever the database
    pytest.mark.first_pass_only,
]


def readme_snippets() -> dict[str, str]:
    return dict(SNIPPET.findall((ROOT / "README.md").read_text("utf-8")))


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would put this checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    return {**env, **extra}


def run(*args: str | Path, cwd: Path, timeout: float = 120) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=clean_env(), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def shared_site_dirs() -> list[str]:
    """This interpreter's package directories (not the checkout, not the stdlib)."""
    stdlib = {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}
    dirs = []
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if path == ROOT or str(path) in stdlib or not path.is_dir():
            continue
        if "site-packages" in path.parts or "dist-packages" in path.parts:
            dirs.append(str(path))
    return list(dict.fromkeys(dirs))


def install_commands() -> list[list[str]]:
    """The README's install lines (``install-wheels``), each a list of words."""
    lines = readme_snippets()["install-wheels"].splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.strip()]


def as_run_here(words: list[str], wheel_dir: Path, python: Path | None = None) -> list[str]:
    """A README line for this test: ``dist`` is ``wheel_dir``; pip works offline, on ``python``.

    ``python -m pip ...`` runs this interpreter's pip; for ``install``, against the new
    virtualenv's interpreter (``--python``), and with ``--no-index``: the dependencies
    are the ones the virtualenv already sees, the package comes from ``wheel_dir``.
    """
    assert words[:3] == ["python", "-m", "pip"], words
    rest = [str(wheel_dir) if word == "dist" else word for word in words[3:]]
    if rest[0] == "install":
        assert python is not None
        return [sys.executable, "-m", "pip", "--python", str(python), *rest, "--no-index",
                "--quiet"]  # fmt: skip
    return [sys.executable, "-m", "pip", *rest, "--quiet"]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    """Both wheels, built from this checkout by the README's own command."""
    work = tmp_path_factory.mktemp("wheels")
    for stale in (ROOT / "build", ROOT / "simulator" / "build"):
        # setuptools packs what an earlier build left in build/lib (files since moved
        # or deleted): a checkout's own artefacts, never the README's reader's.
        shutil.rmtree(stale, ignore_errors=True)
    started = time.monotonic()
    build = install_commands()[0]
    assert build[3] == "wheel", build
    run(*as_run_here(build, work), cwd=ROOT, timeout=300)
    (main,) = work.glob("django_wxpay_profitsharing-*.whl")
    (simulator,) = work.glob("django_wxpay_profitsharing_simulator-*.whl")
    print(f"wheels built in {time.monotonic() - started:.1f} s")
    return {"main": main, "simulator": simulator}


def new_venv(work: Path, *wheels: Path) -> Path:
    """A new virtualenv holding ``wheels``, seeing this one's dependencies.

    The shared package directories are put on its path by a ``.pth`` line each, as plain
    directories: the ``.pth`` files inside them (this checkout's editable installs) are
    not run, so neither checkout package is importable there unless a wheel put it there.
    """
    env_dir = work / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", env_dir, cwd=work)
    python = env_dir / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=work)
    Path(site.strip(), "zz_dependencies.pth").write_text("\n".join(shared_site_dirs()) + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        "--no-index", "--ignore-installed", *wheels, cwd=work)  # fmt: skip
    return env_dir


def base_dependencies(wheel: Path) -> list[metadata.Distribution]:
    """The installed distributions a plain install of ``wheel`` needs (no extra), all deep."""
    _names, lines = wheel_metadata(wheel)
    todo = [
        (Requirement(line.split(":", 1)[1]), ())
        for line in lines
        if line.startswith("Requires-Dist:")
    ]
    found: dict[str, metadata.Distribution] = {}
    while todo:
        requirement, asked = todo.pop()  # asked: the extras its dependant was installed with
        marker = requirement.marker
        if marker and not any(marker.evaluate({"extra": e}) for e in ("", *asked)):
            continue
        key = canonicalize_name(requirement.name)
        if key not in found:
            found[key] = metadata.distribution(requirement.name)
            extras = tuple(requirement.extras)
            todo += [(Requirement(line), extras) for line in found[key].requires or ()]
    return list(found.values())


@pytest.fixture(scope="module")
def plain_venv(wheels, tmp_path_factory) -> Path:
    """A production host after the README's plain install: the app and its dependencies.

    Nothing else is importable there: the dependencies are linked one by one into a
    directory of their own (this environment's drf-spectacular, Celery and simulator stay
    out of sight), then the README's install line puts the app in from the wheels.
    """
    work = tmp_path_factory.mktemp("plain")
    deps = work / "dependencies"
    deps.mkdir()
    for dist in base_dependencies(wheels["main"]):
        tops = {f.parts[0] for f in dist.files or ()} - {"..", "__pycache__"}
        for top in tops:
            if not (deps / top).exists():
                (deps / top).symlink_to(Path(dist.locate_file(top)))
    env_dir = work / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", env_dir, cwd=work)
    python = env_dir / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=work)
    Path(site.strip(), "zz_dependencies.pth").write_text(f"{deps}\n")
    plain = install_commands()[1]
    assert plain[3:] == ["install", "--find-links", "dist", "django-wxpay-profitsharing"], plain
    run(*as_run_here(plain, wheels["main"].parent, python), cwd=work, timeout=300)
    return env_dir


@pytest.fixture(scope="module")
def bare_venv(wheels, tmp_path_factory) -> Path:
    """The production install: the main wheel alone, no extras."""
    return new_venv(tmp_path_factory.mktemp("bare"), wheels["main"])


@pytest.fixture(scope="module")
def venv(wheels, tmp_path_factory) -> Path:
    """The README's install for trying it out: the main wheel and the simulator's."""
    started = time.monotonic()
    env_dir = new_venv(tmp_path_factory.mktemp("wheel"), wheels["main"], wheels["simulator"])
    print(f"virtualenv ready in {time.monotonic() - started:.1f} s")
    return env_dir


def wheel_metadata(wheel: Path) -> tuple[list[str], list[str]]:
    """The wheel's file names and its METADATA lines."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        return names, archive.read(metadata).decode().splitlines()


def test_the_production_install_carries_no_simulator(wheels, bare_venv, tmp_path):
    names, metadata = wheel_metadata(wheels["main"])
    package = [n for n in names if n.startswith("django_wxpay_profitsharing/")]
    assert "django_wxpay_profitsharing/wechatpay/crypto.py" in package
    simulator_like = [
        n for n in names
        if "simulator" in n.lower() or "/testing/" in n or n.startswith("wxpay_simulator")
    ]  # fmt: skip
    assert simulator_like == [], simulator_like
    entry_points = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert entry_points == [], entry_points  # no console script at all
    assert (
        f"Requires-Dist: django-wxpay-profitsharing-simulator=={__version__}; "
        + ('extra == "simulator"')
        in metadata
    ), metadata

    # Installed, and imported the way a production host would.
    python = bare_venv / "bin" / "python"
    assert not (bare_venv / "bin" / "wxpay-simulator").exists()
    probe = (
        "import importlib.util as u, django_wxpay_profitsharing as p; print(p.__file__); "
        "print([m for m in ('wxpay_simulator', 'django_wxpay_profitsharing.simulator', "
        "'django_wxpay_profitsharing.testing') if u.find_spec(m) is not None])"
    )
    where, found = run(python, "-c", probe, cwd=tmp_path).splitlines()
    assert str(bare_venv) in where and str(ROOT) not in where, where
    assert found == "[]", found
    installed = Path(where).parent
    assert not [p for p in installed.rglob("*") if "simulator" in p.name or p.name == "testing"]


def test_the_simulator_wheel_is_released_with_the_app(wheels):
    """Same version both ways: the simulator signs with the app's wechatpay crypto."""
    names, metadata = wheel_metadata(wheels["simulator"])
    assert f"Version: {__version__}" in metadata
    assert f"Requires-Dist: django-wxpay-profitsharing=={__version__}" in metadata, metadata
    assert "wxpay_simulator/testing/inprocess.py" in names
    assert "wxpay_simulator/py.typed" in names
    assert not [n for n in names if n.startswith("django_wxpay_profitsharing/")]
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(wheels["simulator"]) as archive:
        scripts = archive.read(entry_points).decode()
    assert "wxpay-simulator = wxpay_simulator.__main__:main" in scripts


def configure_steps() -> list[str]:
    """The snippets the README's "Configure" gives before it says to run ``migrate``."""
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme[readme.index("\n## Configure\n") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"<!-- readme-snippet: ([\w-]+) -->", section.split("manage.py migrate")[0])


def add_snippets(project: Path, snippets: dict[str, str], names: list[str]) -> None:
    """Each snippet at the end of the new project's urls.py or settings.py, in order."""
    for name in names:
        target = "urls.py" if name.endswith("urls") else "settings.py"
        with (project / "proj" / target).open("a") as f:
            f.write("\n\n" + snippets[name] + "\n")


def write_keys(directory: Path) -> tuple[Path, Path]:
    """A shop's own key files: its private key, and a WeChat Pay public key (another pair)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    directory.mkdir(parents=True)
    private, public = directory / "apiclient_key.pem", directory / "pub_key.pem"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    wechat = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    public.write_bytes(
        wechat.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


#: A draft made over the API by a user who may add returns but not submit them (a
#: request to WeChat Pay would need its network and this merchant's real keys).
API_REQUEST = """
import json
from django.contrib.auth.models import Permission, User
from django.test import Client
user = User.objects.create_user("clerk", is_staff=True)
user.user_permissions.set(Permission.objects.filter(
    codename__in=["add_profitsharingreturn", "view_profitsharingreturn"]))
client = Client(HTTP_HOST="localhost")
client.force_login(user)
body = {"sub_mchid": "1900000109", "out_order_no": "P20261125001", "return_mchid": "86693852",
        "amount": 100, "description": "退款前回退", "out_return_no": "RPLAIN0001"}
made = client.post("/api/wxpay/returns/", json.dumps(body), content_type="application/json")
listed = client.get("/api/wxpay/returns/")
print(json.dumps([made.status_code, made.json()["state"], listed.status_code,
                  [r["out_return_no"] for r in listed.json()["results"]]]))
"""


def test_a_plain_install_follows_the_readme(plain_venv, tmp_path):
    """No extra: the README's settings and urls.py, migrate, check, and the API answers."""
    python = plain_venv / "bin" / "python"
    probe = (
        "import importlib.util as u, django_wxpay_profitsharing as p; print(p.__file__); "
        "print([m for m in ('drf_spectacular', 'celery', 'wxpay_simulator') if u.find_spec(m)])"
    )
    where, extras = run(python, "-c", probe, cwd=tmp_path).splitlines()
    assert str(plain_venv) in where and str(ROOT) not in where, where
    assert extras == "[]", f"not a plain install: {extras} importable"

    run(python, "-m", "django", "startproject", "proj", tmp_path, cwd=tmp_path)
    snippets = readme_snippets()
    # The simulator's settings are for trying without keys; a plain install has its own.
    add_snippets(tmp_path, snippets, [n for n in configure_steps() if n != "simulator-settings"])
    manage = (python, tmp_path / "manage.py")
    example_key = "/etc/wxpay/apiclient_key.pem"
    assert repr(example_key).replace("'", '"') in snippets["settings"], "the example moved"
    if not Path(example_key).exists():
        # As written, where the example's key files are not: check names the setting.
        said = subprocess.run(
            [*map(str, manage), "check"], cwd=tmp_path, env=clean_env(), capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert said.returncode != 0
        assert (
            "WXPAY_PROFITSHARING['PRIVATE_KEY'] names a key file that does not exist "
            f"(no such file: '{example_key}')"
        ) in said.stderr, said.stderr
    # The shop's own keys, where its settings say.
    private, public = write_keys(tmp_path / "keys")
    settings = tmp_path / "proj" / "settings.py"
    text = settings.read_text("utf-8")
    text = text.replace(example_key, str(private)).replace("/etc/wxpay/pub_key.pem", str(public))
    settings.write_text(text, "utf-8")
    run(*manage, "migrate", "--noinput", "-v", "0", cwd=tmp_path)
    run(*manage, "check", "--fail-level", "WARNING", cwd=tmp_path)
    out = run(*manage, "shell", "-v", "0", "-c", API_REQUEST, cwd=tmp_path)
    assert json.loads(out) == [201, "draft", 200, ["RPLAIN0001"]], out


@pytest.fixture
def simulator(venv, tmp_path):
    """``wxpay-simulator`` from the virtualenv, as the README starts it (on a free port)."""
    state_dir = tmp_path / "wxsim"
    proc = subprocess.Popen(
        [str(venv / "bin" / "wxpay-simulator"), "--state-dir", str(state_dir), "--port", "0",
         "--processing-seconds", "0", "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=clean_env(), cwd=tmp_path,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    line = lines.get(timeout=30)
    assert line.startswith("WXPAY_SIMULATOR_READY "), line
    yield state_dir, line.split()[1]
    proc.stdin.close()
    proc.wait(10)


def test_the_readme_configuration_in_a_new_project(venv, simulator, tmp_path):
    started = time.monotonic()
    state_dir, base_url = simulator
    snippets = readme_snippets()
    python = venv / "bin" / "python"
    run(python, "-m", "django", "startproject", "proj", tmp_path, cwd=tmp_path)
    simulator_settings = snippets["simulator-settings"].replace(
        '"/tmp/wxsim"', repr(str(state_dir))
    )
    assert simulator_settings != snippets["simulator-settings"], "the README's state dir moved"
    snippets["simulator-settings"] = simulator_settings
    # In the README's order: what it says before `migrate` (the simulator's settings
    # included: the example key paths name no file here), then migrate and check.
    before_migrate = configure_steps()
    assert "simulator-settings" in before_migrate, before_migrate
    add_snippets(tmp_path, snippets, before_migrate)

    manage = (python, tmp_path / "manage.py")
    which = (
        "import django_wxpay_profitsharing as p, wxpay_simulator as s; "
        "print(p.__file__, s.__file__)"
    )
    where = run(*manage, "shell", "-v", "0", "-c", which, cwd=tmp_path)
    assert where.count(str(venv)) == 2 and str(ROOT) not in where, where
    run(*manage, "migrate", "--noinput", "-v", "0", cwd=tmp_path)
    run(*manage, "check", "--fail-level", "WARNING", cwd=tmp_path)
    # The openapi extra's part, further down.
    add_snippets(tmp_path, snippets, ["schema-settings", "schema-urls"])
    with (tmp_path / "proj" / "settings.py").open("a") as f:
        f.write('\nSTATIC_ROOT = BASE_DIR / "static"\n')
    run(*manage, "check", "--fail-level", "WARNING", cwd=tmp_path)

    # The sharing order, seeded with the README's own request body and route.
    seed = snippets["seed-order"]
    body = json.loads(re.search(r"-d '([^']+)'", seed).group(1))
    route = re.search(r"http://127\.0\.0\.1:8765(/\S+)", seed).group(1)
    requests.post(base_url + route, json=body, timeout=10).raise_for_status()

    out = run(*manage, "shell", "-v", "0", "-c", snippets["create-and-submit"], cwd=tmp_path)
    number, state = out.split()
    assert number.startswith("R") and state == "succeeded", out
    returned = requests.get(f"{base_url}/_simulator/returns", timeout=10).json()["returns"]
    assert [(r["out_return_no"], r["result"]) for r in returned] == [(number, "SUCCESS")]

    # /api/docs/ from the schema snippet: its scripts come from our static files.
    page = run(*manage, "shell", "-v", "0", "-c", (
        "from django.test import Client; r = Client(HTTP_HOST='localhost').get('/api/docs/'); "
        "print(r.status_code); print(r.content.decode())"), cwd=tmp_path)  # fmt: skip
    status, html = page.split("\n", 1)
    assert status == "200"
    scripts = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert scripts and all(s.startswith("/static/drf_spectacular_sidecar/") for s in scripts), (
        scripts
    )
    schema = run(*manage, "shell", "-v", "0", "-c", (
        "from django.test import Client; "
        "print(Client(HTTP_HOST='localhost').get('/api/schema/?format=json').status_code)"),
        cwd=tmp_path)  # fmt: skip
    assert schema.strip() == "200"
    print(f"project configured, migrated and used in {time.monotonic() - started:.1f} s")
