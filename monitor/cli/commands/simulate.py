"""`depin-monitor simulate`: run one reference network (fault-injecting, protocol-faithful)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import ssl

from monitor.cli.commands import Subparsers
from monitor.core.errors import UserError
from monitor.core.tables import Column, console, show
from monitor.simulator.app import start_network
from monitor.simulator.profiles import PROFILES, FaultProfile, parse_override
from monitor.simulator.tls import make_private_ca, server_context

EXAMPLE = """\
examples:
  depin-monitor simulate --profile depin-flaky --port 18083
  depin-monitor simulate --profile datacenter --set p_eof=0.5 --seed 7
  depin-monitor simulate --list
  depin-monitor simulate --tls                  # HTTPS with a throwaway CA (prints its file)
  depin-monitor simulate --tls-cert server.pem --tls-key server.key --tls-client-ca ca.pem

profiles:
""" + "\n".join(f"  {p.name:<14} {p.description}" for p in PROFILES.values())


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "simulate", help="run a reference network on loopback (OpenAI protocol, fault injection)",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--profile", default="datacenter", help="fault profile (default: datacenter)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="listen port (default: a free port)")
    p.add_argument("--seed", type=int, default=0, help="seed for the fault dice (default: 0)")
    p.add_argument("--model", action="append", default=[],
                   help="model id it serves and lists (repeatable: one per tier; default "
                        "sim-llama-3.1-8b-instruct)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a profile field, e.g. --set p_eof=0.2 (repeatable)")
    p.add_argument("--list", action="store_true", help="list the profiles and exit")
    https = p.add_argument_group("HTTPS")
    https.add_argument("--tls", action="store_true",
                     help="serve HTTPS with a throwaway private CA made now (needs trustme: "
                          "pip install 'depin-monitor[tls]'); prints the CA file to trust")
    https.add_argument("--tls-cert", metavar="PEM",
                     help="serve HTTPS with this certificate chain (PEM; may hold the key)")
    https.add_argument("--tls-key", metavar="PEM", help="the certificate's key, if separate")
    https.add_argument("--tls-client-ca", metavar="PEM",
                     help="require client certificates issued by this CA (mTLS)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.profile not in PROFILES:
        raise UserError(f"--profile {args.profile!r} is unknown; choose one of: "
                        f"{', '.join(PROFILES)}")
    if not 0 <= args.port <= 65535:  # 0: any free one
        raise UserError(f"--port {args.port} is out of range; use 0-65535 (0 = a free port)")
    try:
        overrides = dict(parse_override(item) for item in args.set)
        profile = PROFILES[args.profile].with_overrides(**overrides)
    except ValueError as exc:
        raise UserError(str(exc) if str(exc).startswith("--set") else f"--set {exc}") from None
    if args.list:
        show(console(), (Column("profile"), Column("description", wrap=True)),
             [[p.name, p.description] for p in PROFILES.values()])
        return 0
    ssl_context = _ssl_context(args)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(profile, args, ssl_context))
    return 0


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.tls and args.tls_cert:
        raise UserError("give either --tls (a throwaway CA) or --tls-cert, not both")
    if (args.tls_key or args.tls_client_ca) and not (args.tls or args.tls_cert):
        raise UserError("--tls-key and --tls-client-ca need --tls-cert (or --tls)")
    try:
        if args.tls:
            ca = make_private_ca()
            print(f"throwaway CA: {ca.ca_file} (set tls.ca_file to it); certificate for "
                  "localhost, 127.0.0.1 and ::1 until "
                  f"{ca.not_after:%Y-%m-%d}", flush=True)
            return ca.server_context(client_ca=args.tls_client_ca)
        if args.tls_cert:
            return server_context(args.tls_cert, args.tls_key, client_ca=args.tls_client_ca)
    except RuntimeError as exc:
        raise UserError(str(exc)) from None
    except (OSError, ssl.SSLError) as exc:
        raise UserError(f"--tls-cert {args.tls_cert}: cannot load the certificate "
                        f"({getattr(exc, 'reason', None) or exc}); give a PEM chain and its "
                        "key") from None
    return None


async def _serve(profile: FaultProfile, args: argparse.Namespace,
                 ssl_context: ssl.SSLContext | None = None) -> None:
    try:
        models = args.model or ["sim-llama-3.1-8b-instruct"]
        net = await start_network(profile, host=args.host, port=args.port, seed=args.seed,
                                  model=models[0], ssl_context=ssl_context)
        net.sim.served = models if len(models) > 1 else []
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; "
                        "choose another --port") from None
    print(f"simulating {profile.name!r} at {net.base_url} (model {', '.join(models)}); "
          f"truth at {net.url}/sim/truth/<x-request-id>; Ctrl-C stops", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await net.stop()
