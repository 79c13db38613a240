//! The word lists synthetic plugins are written from, most common first in each list (the
//! generator draws from each with a Zipf-like distribution, so the order is the frequency
//! rank). Every word is lowercase ASCII letters and digits, starting with a letter, so that it
//! is also a valid tag and part of a plugin name. Brand-like words for publishers and products
//! are built from [`SYLLABLES`] at start.

/// Things plugins work on.
pub const NOUNS: &str = "\
    api data auth cache webhook events logs metrics login users files search email \
    notifications queue storage config tokens reports dashboard payments jobs messages alerts \
    sessions backup forms workflow pipeline analytics images secrets tasks calendar chat \
    invoices orders customers accounts permissions roles audit health status uptime scheduler \
    cron triggers stream feed content pages comments tickets issues incidents deployments \
    builds releases changelog documents templates markdown html json csv yaml xml pdf \
    spreadsheet sheets table records schema migrations queries index sitemap seo redirects \
    links urls shortener qrcode barcode translations locale currency timezone booking \
    appointments reservations inventory catalog products prices tax shipping cart checkout \
    subscriptions billing usage quota limits ratelimit throttling retry circuit breaker proxy \
    gateway router balancer firewall waf ip geolocation weather maps places addresses phone sms \
    voice video audio thumbnails avatars uploads downloads attachments archive zip compression \
    encryption signatures certificates keys passwords hashing mfa otp sso identity directory \
    groups teams members invites onboarding profiles preferences settings flags features \
    experiments ab funnels cohorts retention churn revenue forecast budget expenses payroll \
    timesheets employees hiring candidates leads deals contacts crm campaigns newsletter \
    marketing social posts mentions reviews ratings surveys feedback support helpdesk faq \
    knowledge wiki docs notes bookmarks todo kanban sprints roadmap projects milestones \
    estimates time tracking clock shifts rota attendance visitors traffic sessions heatmap \
    clicks conversions attribution pixels tags labels categories taxonomy metadata lineage \
    catalogue warehouse lake etl elt ingestion replication snapshots restore recovery failover \
    cluster nodes containers pods functions lambdas serverless edge cdn dns domains tls ssl \
    acme ports network vpn tunnel ssh shell terminal console cli sdk client server service \
    services microservices mesh sidecar tracing spans profiling errors exceptions crashes bugs \
    tests coverage linting formatting dependencies packages registry artifacts images scanning \
    vulnerabilities compliance gdpr consent privacy pii masking redaction retention policies \
    rules alerting oncall escalation runbooks postmortems sla slo latency throughput \
    performance benchmarks load capacity costs spend tagging inventory assets devices sensors \
    iot telemetry gps fleet vehicles routes delivery logistics warehouse suppliers procurement \
    contracts approvals signatures esign legal risk fraud kyc aml scores credit loans banking \
    transfers ledger accounting bookkeeping receipts refunds disputes chargebacks wallet crypto \
    nft tokens blockchain games leaderboard achievements points rewards loyalty coupons \
    discounts gift cards donations events tickets venues seating streaming podcasts music \
    playlists photos gallery media assets fonts icons colors themes widgets components charts \
    graphs diagrams mermaid latex math units conversion calculator random uuid hash diff patch \
    merge sync mirror webhooks polling websocket sse rpc soap openapi swagger postman mock \
    sandbox fixtures seed faker sampling dedupe enrichment normalization validation";

/// Products, protocols and formats plugins connect to.
pub const TECH: &str = "\
    github slack postgres redis s3 kafka stripe oauth jira google aws discord mysql graphql \
    docker kubernetes gitlab salesforce hubspot twilio sendgrid shopify notion airtable zendesk \
    okta ldap saml oidc jwt grpc rest http smtp imap sftp mongodb sqlite elasticsearch \
    opensearch clickhouse snowflake bigquery redshift dynamodb cassandra memcached etcd consul \
    vault nginx prometheus grafana datadog sentry pagerduty opsgenie splunk newrelic honeycomb \
    jaeger zipkin opentelemetry statsd loki influxdb timescale rabbitmq nats mqtt sqs sns \
    kinesis pubsub azure gcp cloudflare fastly vercel netlify heroku digitalocean linode \
    hetzner terraform ansible helm argo flux jenkins circleci buildkite teamcity bitbucket \
    gitea confluence trello asana linear clickup monday basecamp zoom teams webex telegram \
    whatsapp matrix mattermost rocketchat irc rss atom ical vcard gmail outlook exchange \
    dropbox onedrive sharepoint box drive minio ceph nfs ftp webdav caldav carddav paypal adyen \
    braintree klarna square plaid wise coinbase ethereum bitcoin ipfs quickbooks xero netsuite \
    sap oracle workday bamboohr greenhouse lever docusign hellosign mailchimp mailgun postmark \
    sparkpost segment mixpanel amplitude posthog plausible matomo intercom freshdesk helpscout \
    crisp drift calendly typeform jotform surveymonkey wordpress ghost strapi contentful sanity \
    prismic hugo jekyll gatsby nextjs react vue svelte angular node deno python java golang \
    rust ruby php dotnet lua wasm wasi sql nosql parquet avro protobuf arrow duckdb excel \
    openxml odf epub tiff png jpeg webp avif svg ffmpeg imagemagick tesseract pandoc git svn \
    mercurial sonarqube snyk trivy clamav yara virustotal crowdstrike duo yubikey totp webauthn \
    passkeys recaptcha hcaptcha turnstile akismet maxmind mapbox openstreetmap here tomtom \
    fedex ups dhl usps shipstation easypost woocommerce magento bigcommerce etsy amazon ebay \
    youtube twitch vimeo spotify soundcloud instagram facebook linkedin mastodon bluesky reddit \
    hackernews medium substack unsplash pexels giphy figma sketch canva miro lucid loom modbus \
    opcua zigbee bacnet lorawan homekit alexa ifttt zapier n8n nodered airflow dagster prefect \
    dbt fivetran airbyte debezium flink spark hadoop hive presto trino druid pinot superset \
    metabase redash looker tableau powerbi qlik sheets";

/// What plugins do.
pub const VERBS: &str = "\
    sync export import send monitor track validate notify schedule automate forward publish \
    fetch convert transform parse render generate scan detect filter route mirror replicate \
    archive encrypt decrypt sign verify rotate redact mask anonymize deploy provision rollback \
    migrate index aggregate enrich dedupe merge split batch compress resize upload download \
    connect bridge inspect debug profile test lint format translate classify summarize tag \
    label embed preview watch poll stream collect ingest load query visualize chart compare \
    reconcile approve escalate assign remind invite onboard authenticate authorize throttle \
    cache retry queue dispatch relay capture record replay annotate extract scrape crawl unfurl \
    shorten";

/// How plugins do it.
pub const ADJECTIVES: &str = "\
    simple fast secure lightweight realtime minimal reliable flexible configurable automatic \
    incremental scheduled distributed scalable typed async batched cached encrypted signed \
    structured custom private public shared multitenant declarative serverless embedded offline \
    resilient idempotent streaming live daily hourly weekly bulk granular detailed unified \
    modern legacy open native portable tiny smart friendly accessible responsive verbose quiet \
    strict lenient safe durable compact readable searchable";

/// Pieces of the brand-like words publishers and products are named with.
pub const SYLLABLES: &str = "\
    zen tri kor vex lum nor ax bel cra dor fin gal hal jun kal lor mar nex ob pra quo ril sol \
    tav ul ven wyn xan yor zet al bri cor del ent fal gor hex ir jas kin lyt mon nav or pel rax \
    sen tor un vol wex";

/// Endings of brand-like words.
pub const BRAND_ENDINGS: &[&str] = &["", "a", "o", "io", "ix", "on", "ly", "er", "us", "ia"];

/// Endings of publishers' names.
pub const NAMESPACE_SUFFIXES: &[&str] = &[
    "", "", "", "", "-labs", "-io", "-dev", "-hq", "-cloud", "-systems", "-tools", "-oss", "-inc",
    "-team", "-works",
];

/// Licenses with their share of plugins, in percent.
pub const LICENSES: &[(&str, u32)] = &[
    ("MIT", 44),
    ("Apache-2.0", 24),
    ("MIT OR Apache-2.0", 12),
    ("BSD-3-Clause", 5),
    ("MPL-2.0", 3),
    ("ISC", 3),
    ("GPL-3.0-only", 3),
    ("LGPL-3.0-or-later", 2),
    ("AGPL-3.0-only", 1),
    ("BSD-2-Clause", 1),
    ("Unlicense", 1),
    ("LicenseRef-Proprietary", 1),
];

/// Categories (all from the manifest's fixed list) with their share of plugins, in percent.
pub const CATEGORY_SHARES: &[(&str, u32)] = &[
    ("developer-tools", 25),
    ("automation", 18),
    ("data-integration", 15),
    ("security", 12),
    ("analytics", 12),
    ("service-management", 8),
    ("business-intelligence", 5),
    ("other", 5),
];

/// Openings of descriptions: `{N}` a noun, `{T}` a product, `{V}` a verb, `{A}` an adjective,
/// `{B}` a brand-like name.
pub const OPENINGS: &[&str] = &[
    "{V} {N} {N} to {T}",
    "{A} {T} {N} for your {N}",
    "{V} {T} {N} and {V} them in {T}",
    "Connects {T} to {T} and {V} {N}",
    "{A} {N} {N} with {T} support",
    "Keeps {N} in sync between {T} and {T}",
    "{V} and {V} {N} from {T}",
    "A {A} {N} {N} built on {T}",
    "Turns {T} {N} into {N} {N}",
    "Adds {N} {N} to every {N}",
    "{B} {N} for {T}",
    "{V} {N} when {T} {N} change",
    "{T} {N} {N} that {V} {N}",
    "{A} {N} and {N} for {T} {N}",
    "{V} your {N} with {T}",
    "Brings {T} {N} to your {N}",
];

/// Clauses that lengthen descriptions.
pub const CLAUSES: &[&str] = &[
    "with {A} {N}",
    "and {N} {N}",
    "for {T} and {T}",
    "using {T}",
    "without {N} {N}",
    "across {N} and {N}",
    "in {A} {N}",
    "via {T} {N}",
    "on every {N}",
    "by {N}",
    "from {T} {N}",
    "and {V} {N}",
];

/// Openings of reviews.
pub const REVIEW_OPENINGS: &[&str] = &[
    "Works well with {T}",
    "Does what it says",
    "Saved us hours on {N}",
    "Needs better docs for {N}",
    "Broke after the last update of {T}",
    "Solid {N} plugin",
    "Great with {T} {N}",
    "Setup took minutes",
    "Missing {N} support",
    "Fast and {A}",
];
