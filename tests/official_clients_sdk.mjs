// The official SDK (@agentuity/core's CoderClient) against a running hub, one check per
// call the Coder API reference covers. The client parses every answer with the SDK's own
// zod schemas, so a call that resolves has passed them; each check then asserts what the
// answer says. tests/official_clients.py copies this file next to the installed
// node_modules (so the import resolves) and runs it with Bun; it prints a JSON array of
// {name, ok, detail} on stdout.
//
// Environment: HUB_URL, HUB_KEY, HUB_ORG (the org of HUB_KEY), OTHER_KEY (a token of
// another org), OTHER_ORG.
import { CoderClient, CoderSessionSchema } from '@agentuity/core/coder';

const { HUB_URL, HUB_KEY, HUB_ORG, OTHER_KEY, OTHER_ORG } = process.env;
const client = new CoderClient({ apiKey: HUB_KEY, url: HUB_URL, orgId: HUB_ORG });
const results = [];

function expect(condition, what) {
	if (!condition) throw new Error(`expected ${what}`);
}

async function check(name, body) {
	try {
		await body();
		results.push({ name, ok: true, detail: '' });
	} catch (err) {
		const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
		results.push({ name, ok: false, detail });
	}
}

// A call that must fail: its status and the reason the SDK shows.
async function refused(call, status, reason) {
	try {
		await call();
	} catch (err) {
		expect(err.status === status, `status ${status}, got ${err.status} (${err.message})`);
		expect(String(err.message).includes(reason), `"${reason}" in "${err.message}"`);
		return;
	}
	throw new Error(`expected a ${status}, the call succeeded`);
}

// The hub's admin route (hub serve --admin): the only way to pause a session.
async function admin(sessionId, body) {
	const answer = await fetch(`${HUB_URL}/hub/session/${sessionId}/_admin`, {
		method: 'POST',
		headers: { Authorization: `Bearer ${HUB_KEY}`, 'Content-Type': 'application/json' },
		body: JSON.stringify(body),
	});
	expect(answer.ok, `admin route answers 200, got ${answer.status}`);
}

const ids = {};

await check('discover the hub through GET /coder', async () => {
	process.env.AGENTUITY_CATALYST_URL = HUB_URL;
	const discovering = new CoderClient({ apiKey: HUB_KEY, orgId: HUB_ORG });
	expect((await discovering.getUrl()) === HUB_URL, `GET /coder to answer ${HUB_URL}`);
	const listed = await discovering.listSessions();
	expect(Array.isArray(listed.sessions), 'a session list through the discovered URL');
});
await check('createSession with a task only', async () => {
	const created = await client.createSession({ task: 'Write the tests' });
	expect(/^codesess_/.test(created.sessionId), 'a codesess_ id');
	ids.plain = created.sessionId;
});
await check('createSession with every reference field', async () => {
	const created = await client.createSession({
		task: 'Review the auth module',
		label: 'Auth review',
		agent: 'reviewer',
		visibility: 'organization',
		tags: ['security', 'auth'],
		skills: [{ skillId: 'skill_lint', repo: 'acme/skills', name: 'lint' }],
		repo: { url: 'https://github.com/acme/app', branch: 'main' },
		env: { MODE: 'strict' },
		metadata: { team: 'platform' },
		workspaceId: 'ws_123',
		savedSkillIds: ['sk_1'],
		skillBucketIds: ['bk_1'],
	});
	ids.full = created.sessionId;
	const detail = await client.getSession(ids.full);
	expect(detail.label === 'Auth review' && detail.visibility === 'organization', 'label, visibility');
	expect(detail.defaultAgent === 'reviewer', 'defaultAgent reviewer');
	expect(detail.tags.join() === 'security,auth', 'the tags in order');
	expect(detail.skills[0]?.skillId === 'skill_lint', 'the skill');
});
await check('createSession with agent and defaultAgent: defaultAgent is kept', async () => {
	const created = await client.createSession({ task: 't', agent: 'lead', defaultAgent: 'scout' });
	expect((await client.getSession(created.sessionId)).defaultAgent === 'scout', 'defaultAgent scout');
});
await check('createSession with defaultAgent and enabledAgents', async () => {
	const created = await client.createSession({
		task: 't',
		defaultAgent: 'code-review',
		enabledAgents: ['code-review'],
	});
	const detail = await client.getSession(created.sessionId);
	expect(detail.defaultAgent === 'code-review', 'defaultAgent code-review');
});
await check('createSession in loop mode', async () => {
	const created = await client.createSession({
		task: 'Keep going',
		workflowMode: 'loop',
		loop: { goal: 'Ship it', maxIterations: 5, autoContinue: true, allowDetached: false },
	});
	ids.loop = created.sessionId;
	expect((await client.getSession(ids.loop)).workflowMode === 'loop', 'workflowMode loop');
});
await check('createSession refused: the reason is the error', async () => {
	await refused(() => client.createSession({ task: '  ' }), 400, 'task is required');
});
await check('getSession: task, env and metadata', async () => {
	const detail = await client.getSession(ids.full);
	expect(detail.task === 'Review the auth module', 'the task');
	expect(detail.env?.MODE === 'strict' && detail.metadata?.team === 'platform', 'env, metadata');
	CoderSessionSchema.parse(detail);
});
await check('getSession of a missing session is 404', async () => {
	await refused(() => client.getSession('codesess_missing'), 404, 'not found');
});
await check('listSessions', async () => {
	const listed = await client.listSessions();
	const found = listed.sessions.map((s) => s.sessionId);
	expect(found.includes(ids.plain) && found.includes(ids.full), 'the created sessions');
	expect(typeof listed.total === 'number', 'a total');
});
await check('listSessions with limit and offset', async () => {
	const first = await client.listSessions({ limit: 1, offset: 0 });
	const second = await client.listSessions({ limit: 1, offset: 1 });
	expect(first.sessions.length === 1 && second.sessions.length === 1, 'one per page');
	expect(first.sessions[0].sessionId !== second.sessions[0].sessionId, 'two different pages');
});
await check('listSessions with search', async () => {
	const listed = await client.listSessions({ search: 'Auth review' });
	expect(listed.sessions.some((s) => s.sessionId === ids.full), 'the session searched for');
	expect(!listed.sessions.some((s) => s.sessionId === ids.plain), 'no other session');
});
await check('updateSession label', async () => {
	const updated = await client.updateSession(ids.plain, { label: 'Renamed' });
	expect(updated.label === 'Renamed', 'the new label in the answer');
	expect((await client.getSession(ids.plain)).label === 'Renamed', 'the new label in GET');
});
await check('updateSession tags replace the set', async () => {
	await client.updateSession(ids.full, { tags: ['only'] });
	expect((await client.getSession(ids.full)).tags.join() === 'only', 'tags [only]');
});
await check('updateSession visibility', async () => {
	await client.updateSession(ids.plain, { visibility: 'collaborate' });
	expect((await client.getSession(ids.plain)).visibility === 'collaborate', 'collaborate');
});
await check('updateSession skills', async () => {
	await client.updateSession(ids.plain, { skills: [{ skillId: 'skill_x', repo: 'acme/x' }] });
	expect((await client.getSession(ids.plain)).skills[0]?.skillId === 'skill_x', 'skill_x');
});
await check('updateSession agent', async () => {
	const updated = await client.updateSession(ids.plain, { agent: 'builder' });
	expect(updated.defaultAgent === 'builder', 'defaultAgent builder in the answer');
});
await check('updateSession defaultAgent and enabledAgents', async () => {
	await client.updateSession(ids.plain, { defaultAgent: 'lead', enabledAgents: ['lead'] });
	expect((await client.getSession(ids.plain)).defaultAgent === 'lead', 'defaultAgent lead');
});
await check('updateSession agent and defaultAgent: defaultAgent is kept', async () => {
	await client.updateSession(ids.plain, { agent: 'a', defaultAgent: 'scout' });
	expect((await client.getSession(ids.plain)).defaultAgent === 'scout', 'defaultAgent scout');
});
await check('updateSession of a fixed field is refused with the reason', async () => {
	await refused(() => client.updateSession(ids.plain, { metadata: { a: 'b' } }), 400, 'metadata');
});
await check('getLoopState of a standard session', async () => {
	const state = await client.getLoopState(ids.plain);
	expect(state.loop === null && state.workflowMode === 'standard', 'loop null');
});
await check('getLoopState of a loop session', async () => {
	const state = await client.getLoopState(ids.loop);
	expect(state.loop !== null && state.workflowMode === 'loop', 'a loop object');
});
await check('listParticipants', async () => {
	const answer = await client.listParticipants(ids.plain);
	expect(Array.isArray(answer.participants), 'a participant list');
});
await check('listParticipants of a session with a live participant', async () => {
	await admin(ids.loop, { connectParticipant: 'user_observer' });
	const answer = await client.listParticipants(ids.loop, { limit: 10 });
	const found = answer.participants.map((p) => p.id);
	expect(found.includes('user_observer'), `user_observer among ${found}`);
});
await check('listEventHistory', async () => {
	const answer = await client.listEventHistory(ids.plain);
	expect(answer.events.length >= 2, 'the creation and the updates');
});
await check('listEventHistory with a limit', async () => {
	const answer = await client.listEventHistory(ids.plain, { limit: 1 });
	expect(answer.events.length === 1, 'one event');
});
await check('getReplay', async () => {
	const answer = await client.getReplay(ids.plain);
	expect(Array.isArray(answer.entries), 'replay entries');
});
await check('listUsers', async () => {
	const answer = await client.listUsers();
	expect(answer.users.length >= 1, 'the token user');
});
await check('listUsers with search', async () => {
	const answer = await client.listUsers({ search: 'no-such-user-anywhere' });
	expect(answer.users.length === 0, 'no user');
});
await check('resumeSession of a paused session', async () => {
	await admin(ids.loop, { status: 'paused' });
	await client.resumeSession(ids.loop);
	const status = (await client.getSession(ids.loop)).status;
	expect(['resuming', 'active'].includes(status), `resuming or active, got ${status}`);
});
await check('archiveSession', async () => {
	await client.archiveSession(ids.full);
	expect((await client.getSession(ids.full)).status === 'archived', 'status archived');
});
await check('listSessions hides archived ones unless asked', async () => {
	const hidden = await client.listSessions();
	const shown = await client.listSessions({ includeArchived: true });
	expect(!hidden.sessions.some((s) => s.sessionId === ids.full), 'archived hidden');
	expect(shown.sessions.some((s) => s.sessionId === ids.full), 'archived shown');
});
await check('resumeSession of an archived session is refused', async () => {
	await refused(() => client.resumeSession(ids.full), 409, 'archived');
});
await check('deleteSession', async () => {
	await client.deleteSession(ids.full);
	await refused(() => client.getSession(ids.full), 404, 'not found');
});
await check('a wrong key is 401', async () => {
	const stranger = new CoderClient({ apiKey: 'not-a-key', url: HUB_URL, orgId: HUB_ORG });
	await refused(() => stranger.listSessions(), 401, '');
});
await check("another org's token cannot name this org", async () => {
	const other = new CoderClient({ apiKey: OTHER_KEY, url: HUB_URL, orgId: HUB_ORG });
	await refused(() => other.listSessions(), 403, '');
});
await check("another org does not see this org's session", async () => {
	const other = new CoderClient({ apiKey: OTHER_KEY, url: HUB_URL, orgId: OTHER_ORG });
	await refused(() => other.getSession(ids.plain), 404, 'not found');
});

console.log(JSON.stringify(results));
