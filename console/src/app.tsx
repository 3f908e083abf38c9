import { useEffect, useMemo, useState } from 'preact/hooks';
import { type ApiProblem, createApi, type Me, whoAmI } from './api';
import { StatusStrip } from './components/status-strip';
import { type ConsoleContext, Ctx, useConsole } from './context';
import type { Lang } from './format';
import { initialLang, LANG_NAMES, MESSAGES, rememberLang } from './i18n';
import { AccountsPage } from './pages/accounts';
import { AnomaliesPage, BreaksPage } from './pages/breaks';
import { ProjectionsPage } from './pages/projections';
import { SignIn } from './pages/sign-in';
import { StatementPage } from './pages/statement';
import { type Route, useRoute } from './router';

/** The key lives in this tab's session storage only: never in local storage, a cookie or the URL. */
const KEY_ITEM = 'balance-ledger.key';

interface Session {
  readonly key: string;
  readonly me: Me;
}

/** The pages and the operation each one needs (GET /me `operations`). */
const PAGES = [
  { page: 'accounts', href: '#/accounts', needs: 'listAccounts', label: 'accounts' },
  { page: 'breaks', href: '#/breaks', needs: 'listBreaks', label: 'breaks' },
  { page: 'anomalies', href: '#/anomalies', needs: 'listAnomalies', label: 'anomalies' },
  { page: 'projections', href: '#/projections', needs: 'listProjections', label: 'projections' },
] as const;

export function App() {
  const [lang, setLang] = useState<Lang>(initialLang);
  const t = MESSAGES[lang];
  const [session, setSession] = useState<Session | null | 'restoring'>(() => (sessionStorage.getItem(KEY_ITEM) !== null ? 'restoring' : null));
  const [notice, setNotice] = useState<string | null>(null);
  useEffect(() => {
    document.documentElement.lang = lang;
    document.title = t.appName;
  }, [lang]);
  useEffect(() => {
    if (session !== 'restoring') return;
    const key = sessionStorage.getItem(KEY_ITEM) ?? '';
    whoAmI(key).then(
      (me) => setSession({ key, me }),
      (problem: ApiProblem) => {
        // Only a refused key is forgotten; a service that cannot be reached says so and keeps it for the next try.
        if (problem.status === 401) sessionStorage.removeItem(KEY_ITEM);
        setNotice(problem.status === 401 ? `${t.keyRefused} (${problem.title})` : problem.message);
        setSession(null);
      },
    );
  }, [session]);
  const chooseLang = (next: Lang) => {
    rememberLang(next);
    setLang(next);
  };
  const signOut = (why: string | null) => {
    sessionStorage.removeItem(KEY_ITEM);
    setNotice(why);
    setSession(null);
  };

  const langPicker = (
    <div class="lang">
      <label for="lang-select">{t.language}</label>
      <select id="lang-select" value={lang} onChange={(e) => chooseLang((e.target as HTMLSelectElement).value as Lang)}>
        {(Object.keys(LANG_NAMES) as Lang[]).map((l) => (
          <option key={l} value={l} lang={l}>
            {LANG_NAMES[l]}
          </option>
        ))}
      </select>
    </div>
  );

  if (session === 'restoring') return null;
  if (session === null) {
    return (
      <>
        <header class="top">
          <span class="brand">{t.appName}</span>
          {langPicker}
        </header>
        <SignIn
          t={t}
          notice={notice}
          onSignedIn={(key, me) => {
            sessionStorage.setItem(KEY_ITEM, key);
            setNotice(null);
            setSession({ key, me });
          }}
        />
      </>
    );
  }
  return <SignedIn session={session} lang={lang} langPicker={langPicker} onSignOut={signOut} />;
}

function SignedIn({ session, lang, langPicker, onSignOut }: { session: Session; lang: Lang; langPicker: preact.JSX.Element; onSignOut: (why: string | null) => void }) {
  const t = MESSAGES[lang];
  const route = useRoute();
  const api = useMemo(() => createApi(session.key, (problem) => onSignOut(`${MESSAGES[lang].keyRefused} (${problem.title})`)), [session.key]);
  const ctx = useMemo<ConsoleContext>(() => {
    const operations = new Set(session.me.operations);
    return { api, me: session.me, lang, t, may: (op) => session.me.open || operations.has(op) };
  }, [api, session.me, lang]);
  const offered = PAGES.filter((p) => ctx.may(p.needs));
  return (
    <Ctx.Provider value={ctx}>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        {t.skipToContent}
      </a>
      <header class="top">
        <span class="brand">{t.appName}</span>
        <nav aria-label={t.navMain}>
          <ul>
            {offered.map((p) => (
              <li key={p.page}>
                <a href={p.href} aria-current={isCurrent(route, p.page) ? 'page' : undefined}>
                  {t[p.label]}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span>{t.signedInAs(session.me.name, session.me.role)}</span>
          <button type="button" onClick={() => onSignOut(null)}>
            {t.signOut}
          </button>
        </div>
        {langPicker}
      </header>
      {ctx.may('getStatus') && <StatusStrip />}
      <main id="main" tabIndex={-1}>
        <Page route={route} offered={offered.map((p) => p.page)} />
      </main>
    </Ctx.Provider>
  );
}

const isCurrent = (route: Route, page: string) => route.page === page || (page === 'accounts' && route.page === 'statement');

function Page({ route, offered }: { route: Route; offered: readonly string[] }) {
  const { t, me, may } = useConsole();
  const home = offered[0];
  switch (route.page) {
    case 'statement':
      return may('getStatement') ? <StatementPage accountId={route.accountId} params={route.params} /> : <Nothing role={me.role} t={t} />;
    case 'accounts':
    case 'breaks':
    case 'anomalies':
    case 'projections':
      if (!offered.includes(route.page)) return <Nothing role={me.role} t={t} />;
      return route.page === 'accounts' ? <AccountsPage /> : route.page === 'breaks' ? <BreaksPage /> : route.page === 'anomalies' ? <AnomaliesPage /> : <ProjectionsPage />;
    case 'home':
      if (!home) return <Nothing role={me.role} t={t} />;
      return home === 'accounts' ? <AccountsPage /> : home === 'breaks' ? <BreaksPage /> : home === 'anomalies' ? <AnomaliesPage /> : <ProjectionsPage />;
    default: {
      const never: never = route;
      return never;
    }
  }
}

function Nothing({ role, t }: { role: string; t: (typeof MESSAGES)['en'] }) {
  return <p role="alert">{t.nothingForRole(role)}</p>;
}

