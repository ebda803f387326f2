//! Writes every page to `/tmp/pages-preview/` for a visual check in a browser:
//! `cargo run -p menshen-pages --example preview`, then open the files (or screenshot them with
//! headless Chromium).

use menshen_pages::*;

/// A stand-in for the gateway's captcha picture.
const CAPTCHA_SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"120\" height=\"44\" viewBox=\"0 0 120 44\"><rect width=\"120\" height=\"44\" fill=\"#f4f1e8\"/><path d=\"M4 30 C30 10 60 40 116 14\" stroke=\"#9aa\" fill=\"none\"/><text x=\"14\" y=\"31\" font-family=\"monospace\" font-size=\"24\" fill=\"#345\">846/7</text></svg>";

/// A stand-in QR code (a data: URI as the gateway sends; not a scannable code).
const QR: &str = "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 21 21' shape-rendering='crispEdges'><rect width='21' height='21' fill='white'/><path d='M0 0h7v7H0zM14 0h7v7h-7zM0 14h7v7H0z' fill='black'/><path d='M1 1h5v5H1zM15 1h5v5h-5zM1 15h5v5H1z' fill='white'/><path d='M2 2h3v3H2zM16 2h3v3h-3zM2 16h3v3H2zM9 1h2v2H9zM8 4h1v3H8zM10 8h3v2h-3zM14 9h2v3h-2zM9 12h2v4H9zM13 14h3v1h-3zM17 16h3v3h-3zM12 17h2v3h-2zM8 9h1v1H8z' fill='black'/></svg>";

fn write(dir: &std::path::Path, name: &str, html: &str) {
    let html = html.replace("/.menshen/static/", "./");
    std::fs::write(dir.join(name), html).expect("write page");
}

fn main() {
    let dir = std::path::Path::new("/tmp/pages-preview");
    std::fs::create_dir_all(dir).expect("create dir");
    for name in ["menshen.css", "favicon.svg"] {
        let asset = static_asset(name).expect("asset");
        std::fs::write(dir.join(name), asset.body).expect("write asset");
    }
    std::fs::write(dir.join("captcha.svg"), CAPTCHA_SVG).expect("write captcha");
    let methods = [
        OtherMethod {
            label: "自然人憑證登入",
            href: "/.menshen/certificate",
        },
        OtherMethod {
            label: "Google帳號登入",
            href: "/.menshen/oidc/google/start",
        },
    ];
    let methods_en = [
        OtherMethod {
            label: "Citizen digital certificate",
            href: "/.menshen/certificate",
        },
        OtherMethod {
            label: "Google account",
            href: "/.menshen/oidc/google/start",
        },
    ];
    let notice = "各位師長好：\n本系統資安等級由C級調升為B級，系統修改帳號規則複雜度，造成不便，敬請見諒。\n請勿使用瀏覽器自動儲存帳號密碼功能，請直接輸入帳號及密碼。";
    let support = "☎ 03-5622056（代表號）\n週一至週五 上午 08:30–12:00，下午 13:00–17:30\n（例假日及國定假日除外）";
    let page = LoginPage {
        forgot_password_href: "/.menshen/password/forgot",
        lang: Lang::ZhTw,
        site_name: "屏東縣學籍管理系統 2.0",
        csrf: "abc",
        rd: "/students?grade=3",
        username: "teacher01",
        message: Some(LoginMessage::InvalidCredentials),
        notice: Some(notice),
        support: Some(support),
        other_methods: &methods,
        lockout: LockoutRule::default(),
        captcha: Some(CaptchaField {
            id: "cap-1",
            image_src: "./captcha.svg",
            refresh_href: "?new_captcha=1",
        }),
    };
    write(dir, "login.html", &render_login(&page));
    write(
        dir,
        "login-en.html",
        &render_login(&LoginPage {
            lang: Lang::En,
            message: Some(LoginMessage::LoggedOut),
            notice: Some(
                "Maintenance on Saturday 22:00–24:00.\nSign-in is unavailable during that time.",
            ),
            support: Some("Phone 03-5622056\nMon–Fri 08:30–12:00, 13:00–17:30"),
            other_methods: &methods_en,
            username: "",
            ..page.clone()
        }),
    );
    write(
        dir,
        "login-plain.html",
        &render_login(&LoginPage {
            message: None,
            notice: None,
            support: None,
            other_methods: &[],
            username: "",
            captcha: None,
            ..page.clone()
        }),
    );
    write(
        dir,
        "login-locked.html",
        &render_login(&LoginPage {
            message: Some(LoginMessage::Locked {
                until: "14:35".to_owned(),
            }),
            ..page.clone()
        }),
    );
    write(
        dir,
        "login-bound.html",
        &render_login(&LoginPage {
            message: Some(LoginMessage::BoundLogInAgain),
            username: "",
            ..page.clone()
        }),
    );
    let bind = BindPage {
        lang: Lang::ZhTw,
        display_name: "王小明",
        csrf: "abc",
        otp_bound: false,
        certificate: CertificateRow::NotYetAvailable,
        mobile: Some(CertificateRow::Available {
            href: "/.menshen/bind/mobile",
        }),
        forced: true,
    };
    write(dir, "bind.html", &render_bind(&bind));
    write(
        dir,
        "bind-aa.html",
        &render_bind(&BindPage {
            certificate: CertificateRow::NotForAa,
            display_name: "屏東縣立模擬國中 學校管理者",
            ..bind
        }),
    );
    write(
        dir,
        "bind-en.html",
        &render_bind(&BindPage {
            lang: Lang::En,
            otp_bound: true,
            certificate: CertificateRow::Available {
                href: "/.menshen/bind/certificate",
            },
            forced: false,
            ..bind
        }),
    );
    let bind_otp = BindOtpPage {
        lang: Lang::ZhTw,
        csrf: "abc",
        bind_id: "b-1",
        qr_data_uri: QR,
        secret_grouped: "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP",
        issuer: "門神 屏東縣學籍管理系統",
        account: "wang01",
        message: None,
        reauth: ReauthField::Password,
    };
    write(dir, "bind-otp.html", &render_bind_otp(&bind_otp));
    let certificate = CertificatePage {
        lang: Lang::ZhTw,
        site_name: "屏東縣學籍管理系統",
        purpose: CertificatePurpose::Login { rd: "/students" },
        csrf: "abc",
        component_url: "http://localhost:61161",
        component_min_version: "1.3.4",
        download_url: DEFAULT_DOWNLOAD_URL,
    };
    write(dir, "certificate.html", &render_certificate(&certificate));
    let mobile = MobilePage {
        lang: Lang::ZhTw,
        site_name: "學籍系統",
        purpose: MobilePurpose::Login { rd: "/" },
        csrf: "abc",
        id_number: "",
        mode: MobileMode::Push,
        failure: None,
    };
    write(dir, "mobile.html", &render_mobile(&mobile));
    write(
        dir,
        "mobile-no-device.html",
        &render_mobile(&MobilePage {
            id_number: "A123456789",
            mode: MobileMode::Qr,
            failure: Some(MobileFailure {
                code: "no_device".into(),
                until: String::new(),
            }),
            ..mobile.clone()
        }),
    );
    write(
        dir,
        "mobile-wait-qr.html",
        &render_mobile_wait(&MobileWaitPage {
            lang: Lang::ZhTw,
            site_name: "",
            purpose: "bind",
            mode: MobileMode::Qr,
            qr_data_uri: Some(QR),
            seconds_left: 117,
            csrf: "abc",
            masked_id: "******6789",
        }),
    );
    write(
        dir,
        "bind-certificate.html",
        &render_certificate(&CertificatePage {
            purpose: CertificatePurpose::Bind {
                display_name: "王小明",
                forced: true,
                reauth: ReauthField::None,
            },
            ..certificate
        }),
    );
    write(
        dir,
        "bind-otp-en.html",
        &render_bind_otp(&BindOtpPage {
            lang: Lang::En,
            message: Some(BindOtpMessage::WrongCode),
            ..bind_otp
        }),
    );
    let otp = OtpPage {
        lang: Lang::ZhTw,
        csrf: "abc",
        display_name: "王小明",
        message: None,
        lockout: LockoutRule::default(),
    };
    write(dir, "otp.html", &render_otp(&otp));
    write(
        dir,
        "otp-wrong.html",
        &render_otp(&OtpPage {
            message: Some(OtpMessage::WrongCode),
            ..otp.clone()
        }),
    );
    write(
        dir,
        "otp-locked-en.html",
        &render_otp(&OtpPage {
            lang: Lang::En,
            message: Some(OtpMessage::Locked {
                until: "14:35".to_owned(),
            }),
            ..otp
        }),
    );
    write(
        dir,
        "error-429.html",
        &render_error(&ErrorPage {
            lang: Lang::ZhTw,
            kind: ErrorKind::TooManyRequests,
            detail: None,
        }),
    );
    write(
        dir,
        "error.html",
        &render_error(&ErrorPage {
            lang: Lang::ZhTw,
            kind: ErrorKind::UpstreamDown,
            detail: Some("connection refused"),
        }),
    );
    write(
        dir,
        "error-en.html",
        &render_error(&ErrorPage {
            lang: Lang::En,
            kind: ErrorKind::Unavailable,
            detail: None,
        }),
    );
    write(
        dir,
        "signed-in.html",
        &render_signed_in(&SignedInPage {
            lang: Lang::ZhTw,
            display_name: "王小明",
            login_name: "wang01",
            csrf: "abc",
            systems: &[],
            confirm_logout: false,
            everywhere: false,
        }),
    );
    let roles = vec!["staff".to_owned(), "teacher".to_owned()];
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36";
    let activity = [
        ActivityRow {
            when: "2026-11-24 14:05",
            event: "login",
            method: "password+otp",
            outcome: "success",
            client_ip: "203.0.113.7",
            user_agent: chrome,
        },
        ActivityRow {
            when: "2026-11-24 14:03",
            event: "login",
            method: "otp",
            outcome: "failure",
            client_ip: "203.0.113.7",
            user_agent: chrome,
        },
        ActivityRow {
            when: "2026-11-20 09:12",
            event: "bind",
            method: "oidc:google",
            outcome: "success",
            client_ip: "2001:db8:4:12::a7",
            user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        },
        ActivityRow {
            when: "2026-11-18 16:40",
            event: "lock",
            method: "password",
            outcome: "locked",
            client_ip: "198.51.100.23",
            user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0",
        },
        ActivityRow {
            when: "2026-11-18 17:00",
            event: "unlock",
            method: "cli",
            outcome: "success",
            client_ip: "",
            user_agent: "",
        },
        ActivityRow {
            when: "2026-11-01 08:30",
            event: "login",
            method: "password+captcha",
            outcome: "throttled",
            client_ip: "198.51.100.23",
            user_agent: "python-requests/2.32.3 (some very long automated client identification string)",
        },
    ];
    let providers = [
        ProviderRow {
            id: "google",
            label: "Google 帳號",
            bound_as: Some("wang.xiaoming.teacher@gmail.com"),
            may_bind: true,
        },
        ProviderRow {
            id: "edu",
            label: "教育雲端帳號",
            bound_as: None,
            may_bind: true,
        },
    ];
    let account = AccountPage {
        reauth: ReauthField::Password,
        lang: Lang::ZhTw,
        tab: AccountTab::Profile,
        csrf: "abc",
        login_name: "wang01",
        display_name: "王小明",
        school_code: "133601",
        roles: &roles,
        email: "wang01@mail.ptc.edu.tw",
        auth_method: "password+otp",
        activity: &activity,
        otp_bound: true,
        certificate: CertificateRow::NotYetAvailable,
        certificate_holder: None,
        mobile: Some(CertificateRow::Rebindable {
            href: "/.menshen/bind/mobile",
        }),
        mobile_holder: Some(CertificateHolder {
            name: "王小明",
            id_last4: "6789",
            bound_at: "2026-12-04 09:30",
        }),
        providers: &providers,
        message: None,
        sign_ins: &[],
    };
    write(dir, "account.html", &render_account(&account));
    write(
        dir,
        "account-activity.html",
        &render_account(&AccountPage {
            tab: AccountTab::Activity,
            ..account.clone()
        }),
    );
    write(
        dir,
        "account-settings.html",
        &render_account(&AccountPage {
            tab: AccountTab::Settings,
            message: Some(AccountMessage::OidcBound {
                label: "Google 帳號".to_owned(),
            }),
            ..account.clone()
        }),
    );
    let aa_roles = vec!["aa".to_owned()];
    let unbound_providers = [
        ProviderRow {
            bound_as: None,
            may_bind: false,
            ..providers[0]
        },
        ProviderRow {
            may_bind: false,
            ..providers[1]
        },
    ];
    write(
        dir,
        "account-settings-aa.html",
        &render_account(&AccountPage {
            tab: AccountTab::Settings,
            display_name: "屏東縣立模擬國中 學校管理者",
            roles: &aa_roles,
            otp_bound: false,
            certificate: CertificateRow::NotForAa,
            providers: &unbound_providers,
            message: Some(AccountMessage::OidcConflict {
                label: "Google 帳號".to_owned(),
            }),
            ..account.clone()
        }),
    );
    let providers_en = [
        ProviderRow {
            label: "Google account",
            ..providers[0]
        },
        ProviderRow {
            label: "Education cloud account",
            ..providers[1]
        },
    ];
    write(
        dir,
        "account-settings-en.html",
        &render_account(&AccountPage {
            lang: Lang::En,
            tab: AccountTab::Settings,
            certificate: CertificateRow::Bound,
            providers: &providers_en,
            message: Some(AccountMessage::OtpRebound),
            ..account.clone()
        }),
    );
    write(
        dir,
        "account-activity-en.html",
        &render_account(&AccountPage {
            lang: Lang::En,
            tab: AccountTab::Activity,
            ..account.clone()
        }),
    );
    write(
        dir,
        "account-activity-empty.html",
        &render_account(&AccountPage {
            tab: AccountTab::Activity,
            activity: &[],
            ..account.clone()
        }),
    );
    write(
        dir,
        "account-en.html",
        &render_account(&AccountPage {
            lang: Lang::En,
            email: "",
            ..account.clone()
        }),
    );
    write(
        dir,
        "oidc-not-bound.html",
        &render_oidc_error(&OidcErrorPage {
            lang: Lang::ZhTw,
            provider_label: "Google 帳號",
            kind: OidcError::NotBound,
        }),
    );
    write(
        dir,
        "oidc-not-bound-en.html",
        &render_oidc_error(&OidcErrorPage {
            lang: Lang::En,
            provider_label: "Google account",
            kind: OidcError::NotBound,
        }),
    );
    write(
        dir,
        "oidc-state.html",
        &render_oidc_error(&OidcErrorPage {
            lang: Lang::ZhTw,
            provider_label: "Google 帳號",
            kind: OidcError::StateInvalid,
        }),
    );
    let headers: Vec<(String, String)> = [
        ("host", "registry.example.edu.tw"),
        ("x-menshen-user", "wang01"),
        ("x-menshen-name", "%E7%8E%8B%E5%B0%8F%E6%98%8E"),
        ("x-menshen-roles", "teacher,registrar"),
        ("x-menshen-school", "133601"),
        ("x-menshen-auth-method", "password+otp"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36"),
        ("accept", "text/html,application/xhtml+xml"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect();
    write(
        dir,
        "demo.html",
        &render_demo_app(&DemoAppPage {
            path: "/students?grade=3",
            headers: &headers,
            identity_prefix: "x-menshen-",
            app: menshen_pages::DemoApp::REGISTRY,
        }),
    );
}
