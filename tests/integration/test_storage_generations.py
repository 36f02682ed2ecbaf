"""dokku_storage against every Dokku generation the stand-in offers: first run changes, second runs only reads."""
import json
import re
import secrets

import pytest

GENERATIONS = ["0.30.5", "0.37.4", "0.37.10", "0.38.27"]


@pytest.fixture
def host_at_generation(lab):
    """Host 1 switched to a given Dokku version for one test, then put back."""
    host = lab.hosts[0]
    original = lab.ssh(host, "cat /etc/dokku-lab/version").stdout.strip()

    def switch(version):
        lab.ssh(host, f"echo {version} > /etc/dokku-lab/version")
        assert lab.dokku(host, "version").stdout.strip() == f"dokku version {version}"
        return host
    yield switch
    lab.ssh(host, f"echo {original} > /etc/dokku-lab/version")


def run_storage(lab, tmp_path, host, app, check=False):
    play = tmp_path / f"storage-{app}.yml"
    play.write_text(f"""
- hosts: {host['name']}
  gather_facts: false
  tasks:
    - dokku_sqlite.litestream.dokku_storage:
        app: {app}
        create_app: true
      register: result
    - ansible.builtin.copy:
        content: "{{{{ result | to_json }}}}"
        dest: {tmp_path}/result-{app}.json
      delegate_to: localhost
      check_mode: false
""")
    args = [str(play)] + (["--check"] if check else [])
    lab.playbook(*args)
    return json.loads((tmp_path / f"result-{app}.json").read_text())


@pytest.mark.parametrize("version", GENERATIONS)
def test_storage_is_idempotent_on_every_generation(lab, tmp_path, host_at_generation, version):
    host = host_at_generation(version)
    app = f"gen-{version.replace('.', '')}-{secrets.token_hex(2)}"
    try:
        predicted = run_storage(lab, tmp_path, host, app, check=True)
        assert predicted["changed"] and predicted["app_created"]
        assert lab.dokku(host, "apps:exists", app, check=False).returncode == 20  # --check created nothing
        first = run_storage(lab, tmp_path, host, app)
        assert first["changed"] and first["mount_changed"] and first["dokku_version"] == version
        second = run_storage(lab, tmp_path, host, app)
        assert second["changed"] is False
        writes = [c for c in second["commands"]
                  if not re.match(r"dokku (version|apps:exists|storage:list)( |$)|docker info ", c)]
        assert writes == []
        listed = lab.dokku(host, "storage:list", app).stdout
        assert f"/var/lib/dokku/data/storage/{app}--db:/app/db/litestream" in listed
        owner = lab.ssh(host, f"stat -c %u /var/lib/dokku/data/storage/{app}--db").stdout.strip()
        assert owner == "32767"
    finally:
        lab.dokku(host, "apps:destroy", app, "--force", check=False)
        lab.ssh(host, f"rm -rf /var/lib/dokku/data/storage/{app}--db", check=False)
