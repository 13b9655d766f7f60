"""System-scoped admins for Tempest 33's identity admin tests (loaded by scripts/tempest.mjs).

Tempest 33 forces dynamic credentials on its identity admin classes (force_tenant_isolation) and
makes their admin the admin of a fresh project, with project-scoped tokens. On a cloud that enforces
scope (Keystone with enforce_scope, or Atoll, where only the admin role on the system or on the admin
project makes a cloud admin) those tests get 403. Later Tempest releases give these classes system
scope when [enforce_scope] keystone is true; this does the same for Tempest 33, and nothing else:

- a dynamic admin user also gets the identity admin role on the system;
- the identity admin test classes (tempest.api.identity.base.BaseIdentityV3AdminTest) ask for
  system-scoped tokens, as they ask for domain-scoped ones with [identity] admin_domain_scope;
- when one of those classes switches its admin back to a project-scoped token (TrustsV3TestJSON's
  test_get_trusts_all lists every trust so), that token is for the cloud's admin project
  ([auth] admin_project_name), where the dynamic admin is given the admin role: the cloud admin of
  a deployment that names an admin project (Keystone's admin_project_name). The admin of the fresh
  project Tempest made stays what it is, a project admin, and is refused what only a cloud admin
  may do.
- AccessRulesV3Test's setUp deletes the application credential it makes when the test ends, as
  later Tempest releases do (they make it once per class, with a class cleanup). Tempest 33 leaves
  it behind, and with pre-provisioned accounts the next class given the same account
  (ApplicationCredentialsV3Test.test_list_application_credentials counts the user's credentials)
  finds it.

Only active with ATOLL_TEMPEST_SYSTEM_SCOPE=1 in the environment; a module's code is patched right
after it is first imported, so importing this file costs nothing.
"""
import importlib.abc
import importlib.machinery
import os
import sys


def _patch_dynamic_creds(module):
    provider = module.DynamicCredentialProvider
    create = provider._create_creds

    def _create_creds(self, admin=False, roles=None, scope='project'):
        creds = create(self, admin=admin, roles=roles, scope=scope)
        if admin and scope == 'project' and self.identity_version == 'v3':
            user = {'id': creds.credentials.user_id}
            self.creds_client.assign_user_role_on_system(user, self.identity_admin_role)
        return creds

    provider._create_creds = _create_creds


def _patch_identity_base(module):
    cls = module.BaseIdentityV3AdminTest
    setup = cls.setup_clients.__func__

    def setup_clients(klass):
        setup(klass)
        provider = klass.os_admin.auth_provider
        provider.scope = 'system'
        _admin_project_for_project_scope(klass.os_admin)

    cls.setup_clients = classmethod(setup_clients)


def _admin_project_for_project_scope(manager):
    from tempest import config

    conf = config.CONF
    name = conf.auth.admin_project_name
    if not name:
        return
    projects = manager.projects_client.list_projects(params={'name': name})['projects']
    roles = manager.roles_v3_client.list_roles(name=conf.identity.admin_role)['roles']
    if not projects or not roles:
        return
    user_id = manager.credentials.user_id
    manager.roles_v3_client.create_user_role_on_project(projects[0]['id'], user_id, roles[0]['id'])
    # The provider gets credentials of its own (a copy would be reset to the fresh project when the
    # scope changes); the manager's credentials (the fresh project) stay as they are.
    from tempest.lib import auth

    old = manager.auth_provider.credentials
    fields = {
        k: getattr(old, k)
        for k in old.ATTRIBUTES
        if getattr(old, k, None) is not None and not k.startswith(('project_', 'tenant_'))
    }
    fields.update(project_id=projects[0]['id'], project_name=name)
    manager.auth_provider.credentials = auth.KeystoneV3Credentials(**fields)


def _patch_access_rules(module):
    cls = module.AccessRulesV3Test
    set_up = cls.setUp

    def setUp(self):
        set_up(self)
        from tempest.lib.common.utils import test_utils

        self.addCleanup(
            test_utils.call_and_ignore_notfound_exc,
            self.non_admin_app_creds_client.delete_application_credential,
            self.user_id,
            self.app_cred['id'],
        )

    cls.setUp = setUp


_PATCHES = {
    'tempest.lib.common.dynamic_creds': _patch_dynamic_creds,
    'tempest.api.identity.base': _patch_identity_base,
    'tempest.api.identity.v3.test_access_rules': _patch_access_rules,
}


class _AfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


if os.environ.get('ATOLL_TEMPEST_SYSTEM_SCOPE') == '1':
    sys.meta_path.insert(0, _AfterImport())
