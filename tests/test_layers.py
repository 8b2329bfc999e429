"""Imports point down only (README, "Layers"): the wiring (``engarde``) → the pages and API
of each app → ``reports`` → ``integrations`` → ``webhooks`` → ``contacts`` → ``tenants``.

Read from the source with ``ast`` (every ``import``, lazy ones inside functions included), so a new
upward import fails here however it is written. Tests and test helpers are outside the layers: they
may use everything.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The domain apps, bottom first. A module may import its own app and the apps below it.
APPS = ("tenants", "contacts", "webhooks", "integrations", "reports")
#: Modules that are a user interface (pages, API, admin, commands, and the forms and list filters
#: that read their input): one layer above every app, so they may import any app; they live in the
#: app whose data they show.
INTERFACE_MODULES = {"pages", "api", "views", "admin", "urls", "dashboard", "tenant_admin", "forms", "filters"}
#: Small helpers of the project that import no app, so that every layer may use them.
FOUNDATION = {"engarde.queue", "engarde.api", "engarde.commands", "engarde.devkeys", "engarde.admin_confirm",
              "engarde.metrics", "engarde.errors", "engarde.days"}
#: ``tenants`` is the tenancy core every app builds on: nothing in it, its pages included, imports
#: another app.
SELF_CONTAINED = {"tenants"}

#: Upward imports still to be turned round, each with why it is there. The test also fails when one
#: disappears, so this list only ever shrinks. Empty: processing, the last one, now finds sources
#: and connections in ``webhooks.sources``, which ``integrations`` fills at start-up.
KNOWN_UPWARD: set[tuple[str, str]] = set()


def is_test_code(path: Path) -> bool:
    rel = path.relative_to(ROOT)
    return (
        rel.parts[0] == "tests" or path.name in ("tests.py", "testing.py", "conftest.py", "testing_env.py")
        or path.name.startswith("test_")
    )


def project_modules():
    for path in sorted(ROOT.glob("*/**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] not in (*APPS, "engarde") or "migrations" in rel.parts or is_test_code(path):
            continue
        yield ".".join(rel.with_suffix("").parts).removesuffix(".__init__"), path


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            # ``from integrations import tenant_admin`` imports a module, not a name of a package
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if (ROOT / node.module.replace(".", "/") / f"{alias.name}.py").exists())
    return {name for name in found if name.split(".")[0] in (*APPS, "engarde")}


def layer(module: str) -> float:
    """Higher is further up. The foundation is below everything, the wiring above everything."""
    parts = module.split(".")
    if module in FOUNDATION:
        return -1
    if parts[0] == "engarde":
        return len(APPS) + 1
    if parts[-1] in INTERFACE_MODULES or "management" in parts:
        return len(APPS)
    return APPS.index(parts[0])


def is_upward(module: str, imported: str) -> bool:
    app, target = module.split(".")[0], imported.split(".")[0]
    if app == target or imported in FOUNDATION:
        return False
    if module in FOUNDATION or app in SELF_CONTAINED:
        return True
    return layer(imported) > layer(module)


def upward_imports() -> set[tuple[str, str]]:
    return {
        (module, imported) for module, path in project_modules() for imported in imports_of(path)
        if is_upward(module, imported)
    }


def test_imports_point_down_only():
    new = upward_imports() - KNOWN_UPWARD
    assert not new, "upward imports (move the code, or add a hook the layer above subscribes to):\n" + "\n".join(
        f"  {module} imports {imported}" for module, imported in sorted(new)
    )


def test_the_list_of_known_upward_imports_is_still_true():
    gone = KNOWN_UPWARD - upward_imports()
    assert not gone, f"no longer imported, remove from KNOWN_UPWARD: {sorted(gone)}"


@pytest.mark.parametrize("source, imported", [
    ("from integrations.tasks import sync_contact_to_brevo\n", "integrations.tasks"),
    ("def later():\n    import integrations.registry\n", "integrations.registry"),
    ("from integrations import tenant_admin\n", "integrations.tenant_admin"),
])
def test_the_check_sees_every_form_of_import(tmp_path, source, imported):
    module = tmp_path / "probe.py"
    module.write_text(source)
    assert imported in imports_of(module)
    assert is_upward("contacts.services", imported)


@pytest.mark.parametrize("module, imported, upward", [
    ("webhooks.pages", "integrations.registry", False),  # pages may show any app's data
    ("integrations.providers.brevo.provider", "contacts.models", False),
    ("engarde.urls", "webhooks.views", False),
    ("tenants.pages", "integrations.models", True),  # the tenancy core imports no other app
    ("contacts.services", "engarde.queue", False),  # the foundation is below everything
    ("engarde.queue", "tenants.context", True),  # and imports no app
    ("integrations.models", "integrations.admin", False),  # within one app: its own business
    ("webhooks.models", "engarde.urls", True),
])
def test_what_counts_as_upward(module, imported, upward):
    assert is_upward(module, imported) is upward
