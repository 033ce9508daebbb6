"""deploy/fc-paper@.service, one instance per model: the same hardening and restart policy as
deploy/fc-paper.service, a journal, state directory and options file of each instance's own, and
example env files and a scrape config whose metrics ports agree and never collide."""

import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
# what an instance may set differently from the single unit: its name, options, state, journal
PER_INSTANCE = {"Description", "StateDirectory", "WorkingDirectory", "Environment",
                "EnvironmentFile", "ExecStart"}  # fmt: skip


def unit_sections(text: str) -> dict[str, list[tuple[str, str]]]:
    """{section: [(key, value), ...]} of a unit file, repeated keys kept in order."""
    sections, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        else:
            key, value = line.split("=", 1)
            current.append((key, value))
    return sections


def instance(name: str) -> dict[str, list[tuple[str, str]]]:
    """The template's settings for instance `name`, %i expanded as systemd does."""
    return unit_sections((DEPLOY / "fc-paper@.service").read_text().replace("%i", name))


def env_file(name: str) -> dict[str, str]:
    lines = (DEPLOY / f"paper-{name}.env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_template_keeps_the_single_units_hardening_and_restart_policy():
    single = unit_sections((DEPLOY / "fc-paper.service").read_text())
    template = instance("btc")
    assert set(single) == set(template) == {"Unit", "Service", "Install"}
    for section in single:
        ours = [kv for kv in single[section] if kv[0] not in PER_INSTANCE]
        theirs = [kv for kv in template[section] if kv[0] not in PER_INSTANCE]
        assert ours == theirs, section
    assert ("ProtectSystem", "strict") in template["Service"]


def test_each_instance_has_its_own_options_state_and_journal():
    settings = {}
    for name in ("btc", "eth-sol"):
        service = dict(instance(name)["Service"])
        state = f"/var/lib/{service['StateDirectory']}"
        journal = re.search(r"--journal (\S+)", service["ExecStart"]).group(1)
        # the journal lies in the instance's state directory, the one path it may write
        assert Path(journal).parent == Path(state) == Path(service["WorkingDirectory"])
        assert service["EnvironmentFile"] == f"/etc/fc/paper-{name}.env"
        settings[name] = (state, journal, service["EnvironmentFile"])
    assert all(a != b for a, b in zip(settings["btc"], settings["eth-sol"], strict=True))


def test_example_instances_and_scrape_config_agree_on_distinct_ports():
    envs = {name: env_file(name) for name in ("btc", "eth-sol")}
    ports = {name: int(env["FC_METRICS_PORT"]) for name, env in envs.items()}
    assert ports == {"btc": 9464, "eth-sol": 9465}
    assert envs["btc"]["FC_MODEL"] != envs["eth-sol"]["FC_MODEL"]
    # the unit sets the journal: an env file that set one would only mislead
    assert not any("FC_JOURNAL" in env for env in envs.values())
    config = yaml.safe_load((DEPLOY / "prometheus-instances.yml").read_text())
    (job,) = config["scrape_configs"]
    scraped = {
        target["labels"]["unit"]: int(address.rsplit(":", 1)[1])
        for target in job["static_configs"]
        for address in target["targets"]
    }
    assert scraped == {f"fc-paper@{name}": port for name, port in ports.items()}
    assert job["job_name"] == "fc-paper"  # the job the alert rules and `up` alerts select
