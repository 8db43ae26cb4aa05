"""What-if analyses over stored runs: routing and cascades, cache replay; held-out honest.

Public API (everything typed, the analyses pure; only `source` reads the store):

    data = source.load_route_data(store_path, run_ids, prices={RUN_PREFIX: TokenPrice(in, out)})
    report = run.route(data, RouteSpec(...), embedder=OfflineEmbedder(find_model(None, home)),
                       judge_with=functools.partial(judging.with_judge, NAME, registry, settings))
    # or, without embeddings or a judge: route.analyse_route(data, spec) -> RouteReport
    report.chosen.export.write(path)                      # llmbench.route-policy/1

    log = source.load_run_log(store_path, run_id, prices_for=...).requests   # or requestlog.read_request_log
    cache_report = run.cache(log, CacheSpec(...), embedder=..., judge_with=..., provider=...)

    levers.levers(route=report, cache=cache_report, more=[levers.prompt_lever(base, version),
                  levers.provider_cache_lever(name, billed, uncached, n)]) -> list[Lever]
    levers.favoured(found, max_drop_points) -> Lever | None   # the report's levers section shows them
    jsonout.route_json(report), jsonout.cache_json(cache_report): the --json documents
"""
