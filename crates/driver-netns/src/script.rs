//! The DHCP client script: what a guest does with its leases.
//!
//! busybox `udhcpc` configures nothing itself; it runs a script on each
//! event (`deconfig`, `bound`, `renew`, `leasefail`, `nak`) with the lease
//! in the environment (`ip`, `mask`, `router`, `dns`, `mtu`,
//! `staticroutes`...). Ours applies the lease inside the guest's namespace
//! the way a cloud image's DHCP client does, keeps DNS servers in the
//! guest's state directory (a namespace has no `/etc/resolv.conf` of its
//! own, and the machine's must never be touched), and appends the QEMU
//! test guest's console markers (`TESTGUEST NIC=eth0 MAC=.. IP=..`, then
//! `IP=`, `GATEWAY=` and `READY` once every NIC has reported) to the
//! guest's console log, so tests and users read a netns guest's console as
//! they would a VM's. Everything specific to the guest is baked into the
//! text, quoted, so the script is readable on its own when debugging.

use std::fmt::Write;
use std::path::Path;

/// What the script of one guest needs to know.
#[derive(Clone, Debug)]
pub struct ScriptParams<'a> {
    /// The console log markers are appended to.
    pub console: &'a Path,
    /// Per-boot flags (created empty by the driver at each boot).
    pub boot_dir: &'a Path,
    /// Where the primary NIC's DNS servers are written.
    pub resolv_conf: &'a Path,
    /// `(interface, MAC)` of every NIC, in order; the first is the primary
    /// one, the only one whose router becomes the default route (two
    /// default routes would make replies leave by either NIC).
    pub nics: &'a [(String, String)],
}

/// `s` as one single-quoted shell word.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script's text.
pub fn dhcp_script(p: &ScriptParams<'_>) -> String {
    let primary = p.nics.first().map(|(i, _)| i.as_str()).unwrap_or("eth0");
    let all: Vec<&str> = p.nics.iter().map(|(i, _)| i.as_str()).collect();
    let mut macs = String::new();
    for (iface, mac) in p.nics {
        let _ = writeln!(macs, "{iface}) mac={} ;;", sh_quote(mac));
    }
    let mut s = String::new();
    let _ = write!(
        s,
        "#!/bin/sh\n\
         # DHCP client script of a netns guest, written by cloud-driver-netns.\n\
         # busybox udhcpc runs it in the guest's namespace: $1 is the event,\n\
         # the lease is in the environment.\n\
         console={console}\n\
         boot={boot}\n\
         resolv={resolv}\n\
         primary={primary}\n\
         nics={all}\n\
         event=\"$1\"\n\
         case \"$interface\" in\n\
         {macs}*) mac=unknown ;;\n\
         esac\n",
        console = sh_quote(&p.console.to_string_lossy()),
        boot = sh_quote(&p.boot_dir.to_string_lossy()),
        resolv = sh_quote(&p.resolv_conf.to_string_lossy()),
        primary = sh_quote(primary),
        all = sh_quote(&all.join(" ")),
    );
    s.push_str(BODY);
    s
}

/// The part of the script that is the same for every guest.
const BODY: &str = r#"
marker() {
    # After READY, markers start on a fresh line, as on the QEMU guest.
    if [ -d "$boot/ready" ]; then echo >> "$console"; fi
    echo "TESTGUEST $*" >> "$console"
}

# report ADDR|none: the NIC's marker, once per boot and again whenever its
# address changes; READY (after IP= and GATEWAY=) once every NIC reported.
report() {
    if [ -e "$boot/ip.$interface" ] && [ "$(cat "$boot/ip.$interface")" = "$1" ]; then
        return 0
    fi
    marker "NIC=$interface MAC=$mac IP=$1"
    echo "$1" > "$boot/ip.$interface"
    for n in $nics; do
        [ -e "$boot/ip.$n" ] || return 0
    done
    # mkdir is atomic: with several NICs bound at once, one says READY.
    if mkdir "$boot/ready" 2>/dev/null; then
        {
            echo "TESTGUEST IP=$(cat "$boot/ip.$primary")"
            echo "TESTGUEST GATEWAY=$(cat "$boot/gateway" 2>/dev/null || echo none)"
            echo "TESTGUEST READY"
        } >> "$console"
    fi
}

case "$event" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set dev "$interface" up
    ;;
bound|renew)
    if [ -n "$mtu" ]; then ip link set dev "$interface" mtu "$mtu"; fi
    if [ "$event" = bound ]; then ip -4 addr flush dev "$interface"; fi
    ip addr replace "$ip/${mask:-32}" dev "$interface"
    gw=none
    if [ -n "$staticroutes" ]; then
        # RFC 3442: a client given classless static routes ignores the
        # router option; a default route among them is the gateway.
        set -- $staticroutes
        while [ $# -ge 2 ]; do
            dest=$1
            via=$2
            shift 2
            if [ "$dest" = 0.0.0.0/0 ]; then
                [ "$interface" = "$primary" ] || continue
                gw=$via
            fi
            if [ "$via" = 0.0.0.0 ]; then
                ip route replace "$dest" dev "$interface"
            else
                ip route replace "$dest" via "$via" dev "$interface"
            fi
        done
    elif [ -n "$router" ] && [ "$interface" = "$primary" ]; then
        set -- $router
        ip route replace default via "$1" dev "$interface"
        gw=$1
    fi
    if [ "$interface" = "$primary" ]; then
        echo "$gw" > "$boot/gateway"
        {
            for server in $dns; do echo "nameserver $server"; done
            if [ -n "$domain" ]; then echo "search $domain"; fi
        } > "$resolv.tmp" && mv "$resolv.tmp" "$resolv"
    fi
    report "$ip"
    ;;
leasefail)
    report none
    ;;
esac
exit 0
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }

    /// Runs the script for real with `sh`, a fake `ip` that logs its
    /// arguments, and the environment udhcpc would give it.
    struct Sandbox {
        dir: tempfile::TempDir,
        script: std::path::PathBuf,
    }

    impl Sandbox {
        fn new(nics: &[(&str, &str)]) -> Sandbox {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            std::fs::create_dir(d.join("boot")).unwrap();
            std::fs::create_dir(d.join("bin")).unwrap();
            let ip = d.join("bin/ip");
            let log = d.join("ip.log");
            std::fs::write(
                &ip,
                format!("#!/bin/sh\necho \"$*\" >> '{}'\n", log.display()),
            )
            .unwrap();
            let nics: Vec<(String, String)> = nics
                .iter()
                .map(|(i, m)| (i.to_string(), m.to_string()))
                .collect();
            let text = dhcp_script(&ScriptParams {
                console: &d.join("console.log"),
                boot_dir: &d.join("boot"),
                resolv_conf: &d.join("resolv.conf"),
                nics: &nics,
            });
            let script = d.join("dhcp-script");
            std::fs::write(&script, text).unwrap();
            for f in [&ip, &script] {
                Command::new("chmod").arg("+x").arg(f).status().unwrap();
            }
            Sandbox { dir, script }
        }

        fn run(&self, event: &str, env: &[(&str, &str)]) {
            let path = format!("{}:/usr/bin:/bin", self.dir.path().join("bin").display());
            let st = Command::new(&self.script)
                .arg(event)
                .env_clear()
                .env("PATH", path)
                .envs(env.iter().copied())
                .status()
                .unwrap();
            assert!(st.success());
        }

        fn read(&self, name: &str) -> String {
            std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
        }
    }

    #[test]
    fn a_lease_configures_the_nic_and_prints_the_markers() {
        let sb = Sandbox::new(&[("eth0", "fa:16:3e:00:00:01"), ("eth1", "fa:16:3e:00:00:02")]);
        sb.run("deconfig", &[("interface", "eth0")]);
        let lease = [
            ("interface", "eth0"),
            ("ip", "10.0.0.5"),
            ("mask", "24"),
            ("router", "10.0.0.1 10.0.0.2"),
            ("dns", "10.0.0.2 10.0.0.3"),
            ("mtu", "1450"),
        ];
        sb.run("bound", &lease);
        sb.run("renew", &lease);
        // eth1 gets a router too, but only eth0 makes the default route.
        let lease1 = [
            ("interface", "eth1"),
            ("ip", "10.1.0.5"),
            ("mask", "24"),
            ("router", "10.1.0.1"),
        ];
        sb.run("bound", &lease1);
        let ip = sb.read("ip.log");
        assert!(ip.contains("-4 addr flush dev eth0"), "{ip}");
        assert!(ip.contains("addr replace 10.0.0.5/24 dev eth0"), "{ip}");
        assert!(ip.contains("link set dev eth0 mtu 1450"), "{ip}");
        assert!(
            ip.contains("route replace default via 10.0.0.1 dev eth0"),
            "{ip}"
        );
        assert!(!ip.contains("default via 10.1.0.1"), "{ip}");
        assert!(ip.contains("addr replace 10.1.0.5/24 dev eth1"), "{ip}");
        assert_eq!(
            sb.read("resolv.conf"),
            "nameserver 10.0.0.2\nnameserver 10.0.0.3\n"
        );
        // One NIC marker each (the renew changed nothing), then READY.
        assert_eq!(
            sb.read("console.log"),
            "TESTGUEST NIC=eth0 MAC=fa:16:3e:00:00:01 IP=10.0.0.5\n\
             TESTGUEST NIC=eth1 MAC=fa:16:3e:00:00:02 IP=10.1.0.5\n\
             TESTGUEST IP=10.0.0.5\n\
             TESTGUEST GATEWAY=10.0.0.1\n\
             TESTGUEST READY\n"
        );
    }

    #[test]
    fn static_routes_replace_the_router_and_a_failed_lease_says_none() {
        let sb = Sandbox::new(&[("eth0", "fa:16:3e:00:00:01")]);
        sb.run("leasefail", &[("interface", "eth0")]);
        sb.run("leasefail", &[("interface", "eth0")]);
        sb.run(
            "bound",
            &[
                ("interface", "eth0"),
                ("ip", "10.0.0.5"),
                ("mask", "24"),
                ("router", "10.0.0.1"),
                (
                    "staticroutes",
                    "10.9.0.0/16 10.0.0.9 169.254.169.254/32 0.0.0.0 0.0.0.0/0 10.0.0.254",
                ),
            ],
        );
        let ip = sb.read("ip.log");
        assert!(
            ip.contains("route replace 10.9.0.0/16 via 10.0.0.9 dev eth0"),
            "{ip}"
        );
        assert!(
            ip.contains("route replace 169.254.169.254/32 dev eth0"),
            "{ip}"
        );
        assert!(
            ip.contains("route replace 0.0.0.0/0 via 10.0.0.254 dev eth0"),
            "{ip}"
        );
        assert!(
            !ip.contains("10.0.0.1"),
            "the router option is ignored: {ip}"
        );
        assert_eq!(
            sb.read("console.log"),
            "TESTGUEST NIC=eth0 MAC=fa:16:3e:00:00:01 IP=none\n\
             TESTGUEST IP=none\n\
             TESTGUEST GATEWAY=none\n\
             TESTGUEST READY\n\
             \n\
             TESTGUEST NIC=eth0 MAC=fa:16:3e:00:00:01 IP=10.0.0.5\n"
        );
    }
}
